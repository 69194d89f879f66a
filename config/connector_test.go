package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testFile = "/etc/s3mounts/connectors.d/data.toml"

// conn builds a connector file whose first four lines are name, endpoint,
// bucket and mount_name (over replaces a value; "-" leaves the key out but
// keeps the line), then extra from line 5, then, unless extra has its own
// [credentials], an anonymous [credentials] table.
func conn(over map[string]string, extra string) string {
	var b strings.Builder
	for _, kv := range [][2]string{{"name", `"Data"`}, {"endpoint", `"https://s3.example.com"`}, {"bucket", `"my-bucket"`}, {"mount_name", `"data"`}} {
		v := kv[1]
		if o, ok := over[kv[0]]; ok {
			v = o
		}
		if v == "-" {
			b.WriteString("# " + kv[0] + " left out\n")
			continue
		}
		fmt.Fprintf(&b, "%s = %s\n", kv[0], v)
	}
	b.WriteString(extra)
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		b.WriteString("\n")
	}
	if !strings.Contains(extra, "[credentials]") && !strings.Contains(extra, "credentials.") {
		b.WriteString("[credentials]\nanonymous = true\n")
	}
	return b.String()
}

// fileErrors checks that err is made only of *FileError naming file, and
// returns them.
func fileErrors(t *testing.T, err error, file string) []*FileError {
	t.Helper()
	var out []*FileError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		fe, ok := e.(*FileError)
		if !ok {
			t.Fatalf("error %T %q is not a *FileError", e, e)
		}
		if fe.File != file {
			t.Fatalf("error %q names file %q, want %q", fe, fe.File, file)
		}
		out = append(out, fe)
	}
	walk(err)
	return out
}

func TestConnectorDefaults(t *testing.T) {
	a := DefaultAgent()
	a.MountUID, a.MountGID, a.FileMode, a.DirMode = 1234, 567, 0o664, 0o775
	c, err := ParseConnector(testFile, []byte(conn(nil, "")), nil, a)
	if err != nil {
		t.Fatal(err)
	}
	want := &Connector{
		ID: "data", File: testFile, Name: "Data", Endpoint: "https://s3.example.com", Region: "us-east-1",
		Bucket: "my-bucket", MountName: "data", Mode: "ro", Backend: "default", Addressing: "auto",
		UID: 1234, GID: 567, FileMode: 0o664, DirMode: 0o775, StallTimeout: 10 * time.Second,
		MetadataTTL: 60 * time.Second, NegativeTTL: 5 * time.Second, MaxStagingPercent: 50,
		Permissions: "connector", MetadataMax: 256 << 20, ListConcurrency: 16,
		Credentials: Credentials{Anonymous: true},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if c.Active {
		t.Error("active must default to false")
	}
	if !c.PathStyle() {
		t.Error("auto addressing with a non-AWS endpoint must be path-style")
	}
}

func TestConnectorFull(t *testing.T) {
	src := `name        = "Training data"
description = "Images for the detector"
endpoint    = "https://storage.yandexcloud.net/"
region      = "ru-central1"
bucket      = "ml.datasets"
prefix      = "team-a/images"
mount_name  = "datasets"
mode        = "rw"
backend     = "s3fs"
active      = true
addressing  = "virtual"
created_by  = "alice"
created_at  = 2022-07-18T16:23:00+02:00
updated_at  = "2022-07-19T10:00:00Z"
owner       = "root"
group       = 0
file_mode   = "0640"
dir_mode    = "0o750"
stall_timeout = "30s"

[cache]
metadata_ttl = "0s"
negative_ttl = "1s"

[credentials]
access_key_id     = "AKIAEXAMPLE"
secret_name       = "datasets-key"
session_token     = "tok"
role_arn          = "arn:aws:iam::123456789012:role/reader"
role_session_name = "nb"
external_id       = "ext"
source_identity   = "alice"

[[access.allow]]
users   = ["alice"]
groups  = ["team-a"]
actions = ["view", "browse"]

[[access.allow]]
groups  = ["admins"]
`
	c, err := ParseConnector("/x/full.toml", []byte(src), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Connector{
		ID: "full", File: "/x/full.toml", Name: "Training data", Description: "Images for the detector",
		Endpoint: "https://storage.yandexcloud.net", Region: "ru-central1", Bucket: "ml.datasets",
		Prefix: "team-a/images/", MountName: "datasets", Mode: "rw", Backend: "s3fs", Active: true,
		Addressing: "virtual", CreatedBy: "alice",
		CreatedAt: time.Date(2022, 7, 18, 14, 23, 0, 0, time.UTC),
		UpdatedAt: time.Date(2022, 7, 19, 10, 0, 0, 0, time.UTC),
		Owner:     "root", Group: "0", UID: 0, GID: 0, FileMode: 0o640, DirMode: 0o750,
		StallTimeout: 30 * time.Second, MetadataTTL: 0, NegativeTTL: time.Second, MaxStagingPercent: 50,
		Permissions: "connector", MetadataMax: 256 << 20, ListConcurrency: 16,
		Credentials: Credentials{AccessKeyID: "AKIAEXAMPLE", SecretName: "datasets-key", SessionToken: "tok",
			RoleARN: "arn:aws:iam::123456789012:role/reader", RoleSessionName: "nb", ExternalID: "ext", SourceIdentity: "alice"},
		Access: []AccessRule{
			{Users: []string{"alice"}, Groups: []string{"team-a"}, Actions: []Action{ActionView, ActionBrowse}},
			{Groups: []string{"admins"}, Actions: AllActions},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %#v\nwant %#v", c, want)
	}
	if c.PathStyle() {
		t.Error(`addressing = "virtual" must not be path-style`)
	}
}

func TestConnectorValidValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		over  map[string]string
		extra string
		check func(*Connector) bool
	}{
		{"dotted bucket", map[string]string{"bucket": `"a.b.c"`}, "", func(c *Connector) bool { return c.Bucket == "a.b.c" && c.PathStyle() }},
		{"digits bucket", map[string]string{"bucket": `"123"`}, "", func(c *Connector) bool { return c.Bucket == "123" }},
		{"63 char bucket", map[string]string{"bucket": `"` + strings.Repeat("a", 63) + `"`}, "", func(c *Connector) bool { return len(c.Bucket) == 63 }},
		{"http endpoint with port", map[string]string{"endpoint": `"http://127.0.0.1:9000"`}, "", func(c *Connector) bool { return c.Endpoint == "http://127.0.0.1:9000" }},
		{"prefix gets slash", nil, `prefix = "a/b"`, func(c *Connector) bool { return c.Prefix == "a/b/" }},
		{"prefix keeps slash", nil, `prefix = "a/"`, func(c *Connector) bool { return c.Prefix == "a/" }},
		{"empty prefix", nil, `prefix = ""`, func(c *Connector) bool { return c.Prefix == "" }},
		{"mount name chars", map[string]string{"mount_name": `"A-z_0.9"`}, "", func(c *Connector) bool { return c.MountName == "A-z_0.9" }},
		{"owner uid", nil, "owner = 1001\ngroup = \"1002\"", func(c *Connector) bool {
			return c.UID == 1001 && c.GID == 1002 && c.Owner == "1001" && c.Group == "1002"
		}},
		{"owner name", nil, `owner = "root"`, func(c *Connector) bool { return c.UID == 0 && c.Owner == "root" }},
		{"ttl zero", nil, "[cache]\nmetadata_ttl = \"0s\"\nnegative_ttl = \"0s\"", func(c *Connector) bool { return c.MetadataTTL == 0 && c.NegativeTTL == 0 }},
		{"dotted keys", nil, `cache.metadata_ttl = "2s"`, func(c *Connector) bool { return c.MetadataTTL == 2*time.Second }},
		{"inline table", nil, `cache = { negative_ttl = "3s" }`, func(c *Connector) bool { return c.NegativeTTL == 3*time.Second }},
		{"max_staging default", nil, "", func(c *Connector) bool { return c.MaxStaging == 0 && c.MaxStagingPercent == 50 }},
		{"max_staging share", nil, "[cache]\nmax_staging = \"20%\"", func(c *Connector) bool { return c.MaxStaging == 0 && c.MaxStagingPercent == 20 }},
		{"max_staging size", nil, "[cache]\nmax_staging = \"512MiB\"", func(c *Connector) bool { return c.MaxStaging == 512<<20 && c.MaxStagingPercent == 0 }},
		{"max_staging GiB", nil, "[cache]\nmax_staging = \"20 GiB\"", func(c *Connector) bool { return c.MaxStaging == 20<<30 }},
		{"max_staging bytes", nil, "[cache]\nmax_staging = 2097152", func(c *Connector) bool { return c.MaxStaging == 2<<20 }},
		{"permissions object", nil, `permissions = "object"`, func(c *Connector) bool { return c.Permissions == "object" }},
		{"permissions connector", nil, `permissions = "connector"`, func(c *Connector) bool { return c.Permissions == "connector" }},
		{"list_concurrency", nil, `list_concurrency = 1`, func(c *Connector) bool { return c.ListConcurrency == 1 }},
		{"list_concurrency max", nil, `list_concurrency = 64`, func(c *Connector) bool { return c.ListConcurrency == 64 }},
		{"metadata_max MiB", nil, "[cache]\nmetadata_max = \"64MiB\"", func(c *Connector) bool { return c.MetadataMax == 64<<20 }},
		{"metadata_max bytes", nil, "[cache]\nmetadata_max = 1048576", func(c *Connector) bool { return c.MetadataMax == 1<<20 }},
		{"metadata_max GiB spaced", nil, "[cache]\nmetadata_max = \"2 GiB\"", func(c *Connector) bool { return c.MetadataMax == 2<<30 }},
		{"profile", nil, "[credentials]\nprofile = \"team\"", func(c *Connector) bool { return c.Credentials.Profile == "team" }},
		{"web identity", nil, "[credentials]\nweb_identity_token_file = \"/var/run/token\"\nrole_arn = \"arn:aws:iam::1:role/r\"", func(c *Connector) bool {
			return c.Credentials.WebIdentityTokenFile == "/var/run/token"
		}},
		{"profile with role", nil, "[credentials]\nprofile = \"p\"\nrole_arn = \"arn:aws:iam::1:role/r\"", func(c *Connector) bool { return c.Credentials.RoleARN != "" }},
		{"secret file", nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_access_key_file = \"/srv/k\"", func(c *Connector) bool {
			return c.Credentials.SecretAccessKeyFile == "/srv/k"
		}},
		{"no policy", nil, "", func(c *Connector) bool { return c.Access == nil }},
		{"crlf line ends", nil, "mode = \"rw\"\r\nbackend = \"s3fs\"\r\n", func(c *Connector) bool { return c.Mode == "rw" && c.Backend == "s3fs" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConnector(testFile, []byte(conn(tc.over, tc.extra)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected result %+v", c)
			}
		})
	}
}

func TestConnectorErrors(t *testing.T) {
	const F = testFile
	for _, tc := range []struct {
		name  string
		over  map[string]string
		extra string
		want  string // "LINE: KEY" prefix after the file, e.g. "3: bucket"
		msg   string // substring of the message
	}{
		// required keys
		{"name missing", map[string]string{"name": "-"}, "", "name", "is required"},
		{"name empty", map[string]string{"name": `"  "`}, "", "1: name", "must not be empty"},
		{"name not a string", map[string]string{"name": `1`}, "", "1: name", "must be a string"},
		{"endpoint missing", map[string]string{"endpoint": "-"}, "", "endpoint", "is required"},
		{"bucket missing", map[string]string{"bucket": "-"}, "", "bucket", "is required"},
		{"mount_name missing", map[string]string{"mount_name": "-"}, "", "mount_name", "is required"},
		// endpoint
		{"endpoint scheme", map[string]string{"endpoint": `"ftp://h"`}, "", "2: endpoint", "https://"},
		{"endpoint no scheme", map[string]string{"endpoint": `"s3.example.com"`}, "", "2: endpoint", "https://"},
		{"endpoint no host", map[string]string{"endpoint": `"https://"`}, "", "2: endpoint", "no host"},
		{"endpoint query", map[string]string{"endpoint": `"https://h/?a=1"`}, "", "2: endpoint", "query"},
		{"endpoint port", map[string]string{"endpoint": `"https://h:99999"`}, "", "2: endpoint", "port"},
		{"endpoint userinfo", map[string]string{"endpoint": `"https://u:hunter2@h"`}, "", "2: endpoint", "password"},
		{"endpoint garbage", map[string]string{"endpoint": `"https://h%zz"`}, "", "2: endpoint", "not a URL"},
		// bucket
		{"bucket short", map[string]string{"bucket": `"ab"`}, "", "3: bucket", "3 to 63"},
		{"bucket long", map[string]string{"bucket": `"` + strings.Repeat("a", 64) + `"`}, "", "3: bucket", "3 to 63"},
		{"bucket upper", map[string]string{"bucket": `"My-Bucket"`}, "", "3: bucket", "lowercase"},
		{"bucket underscore", map[string]string{"bucket": `"my_bucket"`}, "", "3: bucket", "lowercase"},
		{"bucket starts with dash", map[string]string{"bucket": `"-abc"`}, "", "3: bucket", "start and end"},
		{"bucket ends with dot", map[string]string{"bucket": `"abc."`}, "", "3: bucket", "start and end"},
		{"bucket double dot", map[string]string{"bucket": `"a..b"`}, "", "3: bucket", `".."`},
		{"bucket dot dash", map[string]string{"bucket": `"a.-b"`}, "", "3: bucket", "'-' next to '.'"},
		{"bucket ip", map[string]string{"bucket": `"192.168.1.1"`}, "", "3: bucket", "IP address"},
		// mount_name
		{"mount_name dot", map[string]string{"mount_name": `"."`}, "", "4: mount_name", "not \".\""},
		{"mount_name dotdot", map[string]string{"mount_name": `".."`}, "", "4: mount_name", "not a directory name"},
		{"mount_name slash", map[string]string{"mount_name": `"a/b"`}, "", "4: mount_name", "not a directory name"},
		{"mount_name long", map[string]string{"mount_name": `"` + strings.Repeat("m", 65) + `"`}, "", "4: mount_name", "1 to 64"},
		{"mount_name empty", map[string]string{"mount_name": `""`}, "", "4: mount_name", "1 to 64"},
		// enums and simple keys
		{"region", nil, `region = "us east"`, "5: region", "not a region"},
		{"prefix abs", nil, `prefix = "/a"`, "5: prefix", `must not start with "/"`},
		{"prefix double slash", nil, `prefix = "a//b"`, "5: prefix", `"//"`},
		{"prefix dotdot", nil, `prefix = "a/../b"`, "5: prefix", `".."`},
		{"prefix dot", nil, `prefix = "./a"`, "5: prefix", `"."`},
		{"mode", nil, `mode = "rwx"`, "5: mode", `use "ro" or "rw"`},
		{"backend", nil, `backend = "fuse"`, "5: backend", `"default", "geesefs" or "s3fs"`},
		{"addressing", nil, `addressing = "vhost"`, "5: addressing", `"auto", "path" or "virtual"`},
		{"active string", nil, `active = "yes"`, "5: active", "true or false"},
		{"created_at local", nil, `created_at = 2022-07-18T14:23:00`, "5: created_at", "time zone"},
		{"created_at bad string", nil, `created_at = "yesterday"`, "5: created_at", "not a date-time"},
		{"updated_at int", nil, `updated_at = 5`, "5: updated_at", "date-time"},
		{"owner unknown", nil, `owner = "no-such-user-s3m"`, "5: owner", "no user"},
		{"group unknown", nil, `group = "no-such-group-s3m"`, "5: group", "no group"},
		{"owner negative", nil, `owner = -1`, "5: owner", "not a valid uid"},
		{"owner float", nil, `owner = 1.5`, "5: owner", "numeric uid"},
		{"file_mode int", nil, `file_mode = 644`, "5: file_mode", "octal string"},
		{"file_mode digits", nil, `file_mode = "0999"`, "5: file_mode", "octal"},
		{"dir_mode setuid", nil, `dir_mode = "4755"`, "5: dir_mode", "setuid"},
		{"file_mode symbolic", nil, `file_mode = "rw-r--r--"`, "5: file_mode", "octal"},
		{"stall zero", nil, `stall_timeout = "0s"`, "5: stall_timeout", "out of range"},
		{"stall huge", nil, `stall_timeout = "1h"`, "5: stall_timeout", "out of range"},
		{"stall no unit", nil, `stall_timeout = "10"`, "5: stall_timeout", "not a duration"},
		{"stall int", nil, `stall_timeout = 10`, "5: stall_timeout", "string"},
		{"ttl negative", nil, "[cache]\nmetadata_ttl = \"-1s\"", "6: cache.metadata_ttl", "out of range"},
		{"negative ttl bad", nil, "[cache]\nnegative_ttl = \"soon\"", "6: cache.negative_ttl", "not a duration"},
		{"max_staging word", nil, "[cache]\nmax_staging = \"lots\"", "6: cache.max_staging", "not a size or a share"},
		{"max_staging share 0", nil, "[cache]\nmax_staging = \"0%\"", "6: cache.max_staging", "1% to 100%"},
		{"max_staging share 150", nil, "[cache]\nmax_staging = \"150%\"", "6: cache.max_staging", "1% to 100%"},
		{"max_staging tiny", nil, "[cache]\nmax_staging = \"1KiB\"", "6: cache.max_staging", "too small"},
		{"max_staging tiny int", nil, "[cache]\nmax_staging = 10", "6: cache.max_staging", "too small"},
		{"max_staging GB", nil, "[cache]\nmax_staging = \"20GB\"", "6: cache.max_staging", "not a size"},
		{"permissions other", nil, `permissions = "posix"`, "5: permissions", `"connector" or "object"`},
		{"permissions bool", nil, `permissions = true`, "5: permissions", "string"},
		{"list_concurrency 0", nil, `list_concurrency = 0`, "5: list_concurrency", "1 to 64"},
		{"list_concurrency 65", nil, `list_concurrency = 65`, "5: list_concurrency", "1 to 64"},
		{"list_concurrency string", nil, `list_concurrency = "8"`, "5: list_concurrency", "integer"},
		{"metadata_max word", nil, "[cache]\nmetadata_max = \"lots\"", "6: cache.metadata_max", "not a size"},
		{"metadata_max tiny", nil, "[cache]\nmetadata_max = \"1KiB\"", "6: cache.metadata_max", "1MiB to 1TiB"},
		{"metadata_max tiny int", nil, "[cache]\nmetadata_max = 1000", "6: cache.metadata_max", "out of range"},
		{"metadata_max huge", nil, "[cache]\nmetadata_max = \"2TiB\"", "6: cache.metadata_max", "out of range"},
		{"metadata_max share", nil, "[cache]\nmetadata_max = \"50%\"", "6: cache.metadata_max", "not a size"},
		// strictness
		{"unknown key", nil, `nmae = "x"`, "5: nmae", `did you mean "name"`},
		{"wrong case", nil, `Mode = "rw"`, "5: Mode", `did you mean "mode"`},
		{"unknown table", nil, "[cachee]\nmetadata_ttl = \"1s\"", "5: cachee", `did you mean "cache"`},
		{"unknown key in table", nil, "[cache]\nmetadata = \"1s\"", "6: cache.metadata", "unknown key"},
		{"unknown credentials key", nil, "[credentials]\nanonymous = true\nsecret = \"x\"", "7: credentials.secret", "unknown key"},
		{"unknown rule key", nil, "[[access.allow]]\nusers = [\"a\"]\nuser = [\"b\"]", "7: access.allow.user", "unknown key"},
		{"table as value", nil, `cache = "60s"`, "5: cache", "must be a table"},
		{"allow as value", nil, `access = { allow = "x" }`, "5: access.allow", "array of tables"},
		{"syntax", nil, "prefix = \n", "5", "fix the TOML syntax"},
		{"duplicate key", nil, `name = "again"`, "5", "fix the TOML syntax"},
		// credentials
		{"no credentials", nil, "[credentials]\n", "5: credentials", "no credentials"},
		{"no credentials table", nil, "credentials.profile = \"\"", "credentials", "no credentials"},
		{"key without secret", nil, "[credentials]\naccess_key_id = \"AK\"", "6: credentials.access_key_id", "needs the secret key"},
		{"secret without key", nil, "[credentials]\nsecret_name = \"k\"", "6: credentials.secret_name", "needs access_key_id"},
		{"two secrets", nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_name = \"k\"\nsecret_access_key_file = \"/k\"", "8: credentials.secret_access_key_file", "conflicts with secret_name"},
		{"anonymous and key", nil, "[credentials]\nanonymous = true\naccess_key_id = \"AK\"\nsecret_name = \"k\"", "7: credentials.access_key_id", "conflicts with anonymous"},
		{"profile and key", nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_name = \"k\"\nprofile = \"p\"", "8: credentials.profile", "conflicts with access_key_id"},
		{"web identity needs role", nil, "[credentials]\nweb_identity_token_file = \"/t\"", "6: credentials.web_identity_token_file", "needs role_arn"},
		{"web identity and profile", nil, "[credentials]\nprofile = \"p\"\nweb_identity_token_file = \"/t\"\nrole_arn = \"arn:x\"", "7: credentials.web_identity_token_file", "conflicts with profile"},
		{"session name without role", nil, "[credentials]\nprofile = \"p\"\nrole_session_name = \"nb\"", "7: credentials.role_session_name", "only applies with role_arn"},
		{"external id without role", nil, "[credentials]\nprofile = \"p\"\nexternal_id = \"x\"", "7: credentials.external_id", "only applies with role_arn"},
		{"role arn syntax", nil, "[credentials]\nprofile = \"p\"\nrole_arn = \"reader\"", "7: credentials.role_arn", "ARN"},
		{"token without key", nil, "[credentials]\nprofile = \"p\"\nsession_token = \"t\"", "7: credentials.session_token", "needs access_key_id"},
		{"secret name path", nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_name = \"../k\"", "7: credentials.secret_name", "file name in secrets_dir"},
		{"secret file relative", nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_access_key_file = \"k\"", "7: credentials.secret_access_key_file", "absolute path"},
		{"encrypted not age", nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_access_key_encrypted = \"abc\"", "7: credentials.secret_access_key_encrypted", "not an age message"},
		{"anonymous string", nil, "[credentials]\nanonymous = \"true\"", "6: credentials.anonymous", "true or false"},
		// access policy
		{"empty policy", nil, "[access]\nallow = []", "6: access.allow", "is empty"},
		{"rule names nobody", nil, "[[access.allow]]\nactions = [\"view\"]", "5: access.allow", "no users and no groups"},
		{"bad action", nil, "[[access.allow]]\nusers = [\"a\"]\nactions = [\"view\", \"delete\"]", "7: access.allow.actions", `element 2 is not an action`},
		{"empty actions", nil, "[[access.allow]]\nusers = [\"a\"]\nactions = []", "7: access.allow.actions", "is empty"},
		{"users string", nil, "[[access.allow]]\nusers = \"alice\"", "6: access.allow.users", "array of names"},
		{"bad group name", nil, "[[access.allow]]\ngroups = [\"a b\"]", "6: access.allow.groups", `element 1 is not a name`},
		{"second rule line", nil, "[[access.allow]]\nusers = [\"a\"]\n\n[[access.allow]]\nusers = [\"b\"]\nactions = [\"fly\"]", "10: access.allow.actions", "(rule 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := conn(tc.over, tc.extra)
			_, err := ParseConnector(F, []byte(src), nil, nil)
			if err == nil {
				t.Fatalf("no error for\n%s", src)
			}
			fileErrors(t, err, F)
			want := F + ":" + tc.want + ": "
			if !strings.ContainsAny(tc.want[:1], "0123456789") {
				want = F + ": " + tc.want + ": "
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, want) && strings.Contains(line, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want an error starting %q containing %q, got:\n%v\nfile:\n%s", want, tc.msg, err, src)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error echoes the endpoint's password: %v", err)
			}
		})
	}
}

func TestConnectorByteOrderMark(t *testing.T) {
	src := "\ufeff" + conn(nil, "mode = \"x\"")
	_, err := ParseConnector(testFile, []byte(src), nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), testFile+":5: mode: ") {
		t.Fatalf("got %v", err)
	}
}

func TestConnectorSeveralErrors(t *testing.T) {
	src := conn(map[string]string{"bucket": `"B"`, "mount_name": `"a/b"`}, "mode = \"x\"\nbogus = 1")
	_, err := ParseConnector(testFile, []byte(src), nil, nil)
	fes := fileErrors(t, err, testFile)
	got := map[string]int{}
	for _, fe := range fes {
		got[fe.Key] = fe.Line
	}
	want := map[string]int{"bucket": 3, "mount_name": 4, "mode": 5, "bogus": 6}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got keys/lines %v, want %v (errors: %v)", got, want, err)
	}
}

func TestKeyLinesAfterMultilineString(t *testing.T) {
	src := `name = "n"
endpoint = "https://h"
bucket = "my-bucket"
mount_name = "m"
description = """
mode = "this is text, not a key"
"""
mode = "bad"
[credentials]
access_key_id = "AK"
secret_access_key_encrypted = '''
-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==
-----END AGE ENCRYPTED FILE-----
'''
# comment: profile = "x"
profile = "p"
`
	_, err := ParseConnector(testFile, []byte(src), nil, nil)
	fes := fileErrors(t, err, testFile)
	got := map[string]int{}
	for _, fe := range fes {
		got[fe.Key] = fe.Line
	}
	if got["mode"] != 8 || got["credentials.profile"] != 17 {
		t.Fatalf("lines: %v (%v)", got, err)
	}
}

func TestInlineSecretFileMode(t *testing.T) {
	src := conn(nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \"s3cr3t-value\"")
	dir := t.TempDir()
	path := filepath.Join(dir, "inline.toml")
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}, {0o604, false}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConnector(path, nil)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if c.Credentials.SecretAccessKey != "s3cr3t-value" {
					t.Fatal("inline secret not kept")
				}
				return
			}
			if err == nil {
				t.Fatal("inline secret accepted in a file others can read")
			}
			want := fmt.Sprintf("%s:7: credentials.secret_access_key: ", path)
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), "secret_name") {
				t.Fatalf("got %v", err)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Fatal("error shows the secret")
			}
		})
	}
}

// No error message, whatever is wrong, shows a secret's value.
func TestSecretNeverInErrors(t *testing.T) {
	const secret = "SUPERSECRETvalue42"
	for _, extra := range []string{
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = " + secret,                         // unquoted: syntax error
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \"" + secret + "\nx\"",             // broken string
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \"" + secret + "\"\nanonymous = 1", // other errors
		"[credentials]\nsecret_access_key = \"" + secret + "\"",                                        // no access key
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \"" + secret + "\"\nsecret_name = \"n\"",
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = [\"" + secret + "\"]",
		"[credentials]\naccess_key_id = \"AK\"\nsecret_name = \"k\"\nsession_token = \"" + secret + "\"\nanonymous = true",
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \"" + secret + "\"\nSecret_Access_Key = \"" + secret + "\"",
		"[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \"" + secret + "\t\x01\"",
		"[credentials]\nsecret_access_key = '" + secret + "\n",
	} {
		src := conn(nil, extra)
		info := fakeInfo{mode: 0o644}
		c, err := ParseConnector(testFile, []byte(src), info, nil)
		if err == nil {
			t.Fatalf("no error for %q (%v)", extra, c)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
			t.Fatalf("error shows the secret: %v", err)
		}
	}
}

type fakeInfo struct {
	fs.FileInfo
	mode fs.FileMode
}

func (f fakeInfo) Mode() fs.FileMode { return f.mode }

func TestCredentialsNeverPrinted(t *testing.T) {
	const secret, token = "SECRETKEY-abc", "TOKEN-xyz"
	src := conn(nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_access_key = \""+secret+"\"\nsession_token = \""+token+"\"")
	c, err := ParseConnector(testFile, []byte(src), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{c, *c, c.Credentials, &c.Credentials} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, secret) || strings.Contains(out, token) ||
				strings.Contains(out, fmt.Sprintf("%x", secret)) {
				t.Fatalf("%s of %T shows a secret: %s", format, v, out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(c.Credentials), "access_key_id=AK") {
		t.Errorf("String should still say where the secret comes from: %s", c.Credentials)
	}
}

func TestIsConnectorFile(t *testing.T) {
	for name, want := range map[string]bool{
		"data.toml": true, "a.b.toml": true, "x.toml~": false, ".data.toml": false, "..data": false,
		".data.toml.swp": false, "data.toml.swp": false, "data.toml.tmp": false, "data.tmp": false,
		"data.yaml": false, ".toml": false, "data": false, "README": false, "data.toml.bak": false,
	} {
		if got := IsConnectorFile(name); got != want {
			t.Errorf("IsConnectorFile(%q) = %v, want %v", name, got, want)
		}
	}
	if id := ConnectorID("/etc/s3mounts/connectors.d/team-a.data.toml"); id != "team-a.data" {
		t.Errorf("ConnectorID = %q", id)
	}
	if id := ConnectorID("x.toml"); id != "x" {
		t.Errorf("ConnectorID = %q", id)
	}
}

func TestConnectorIDFromFileName(t *testing.T) {
	_, err := ParseConnector("/d/bad name.toml", []byte(conn(nil, "")), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "rename the file") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadConnector(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok.toml")
	if err := os.WriteFile(path, []byte(conn(nil, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConnector(path, nil)
	if err != nil || c.ID != "ok" || c.File != path {
		t.Fatalf("got %+v, %v", c, err)
	}
	_, err = LoadConnector(filepath.Join(dir, "missing.toml"), nil)
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != filepath.Join(dir, "missing.toml") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := LoadConnector(dir, nil); err == nil {
		t.Fatal("a directory loaded as a connector")
	}
}

func TestDuplicateMountNames(t *testing.T) {
	dir := t.TempDir()
	var cs []*Connector
	for _, f := range []struct{ file, mount string }{{"b.toml", "shared"}, {"a.toml", "shared"}, {"c.toml", "own"}, {"d.toml", "shared"}} {
		path := filepath.Join(dir, f.file)
		src := conn(map[string]string{"mount_name": `"` + f.mount + `"`}, "")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConnector(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	errs := DuplicateMountNames(cs)
	if len(errs) != 2 || errs["a"] != nil || errs["c"] != nil {
		t.Fatalf("got %v", errs)
	}
	for _, id := range []string{"b", "d"} {
		var fe *FileError
		if !errors.As(errs[id], &fe) {
			t.Fatalf("%s: %v is not a FileError", id, errs[id])
		}
		want := filepath.Join(dir, id+".toml") + ":4: mount_name: "
		if !strings.HasPrefix(fe.Error(), want) || !strings.Contains(fe.Error(), filepath.Join(dir, "a.toml")) {
			t.Fatalf("%s: got %q, want prefix %q naming a.toml", id, fe, want)
		}
	}
}

func TestWarnings(t *testing.T) {
	policy := "file_mode = \"%s\"\ndir_mode = \"%s\"\n[credentials]\nanonymous = true\n[[access.allow]]\nusers = [\"a\"]"
	for _, tc := range []struct {
		name, extra string
		want        string
	}{
		{"policy, world readable", fmt.Sprintf(policy, "0644", "0755"), "readable by every user"},
		{"policy, world listable dir", fmt.Sprintf(policy, "0640", "0751"), "readable by every user"},
		{"policy, private", fmt.Sprintf(policy, "0640", "0750"), ""},
		{"no policy, world readable", "file_mode = \"0644\"", ""},
		{"virtual dotted", "addressing = \"virtual\"", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConnector(testFile, []byte(conn(nil, tc.extra)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := Warnings(c, nil)
			if tc.want == "" && len(w) != 0 || tc.want != "" && (len(w) != 1 || !strings.Contains(w[0], tc.want)) {
				t.Fatalf("got %q, want %q", w, tc.want)
			}
		})
	}
	c, err := ParseConnector(testFile, []byte(conn(map[string]string{"bucket": `"a.b"`}, "addressing = \"virtual\"")), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := Warnings(c, nil); len(w) != 1 || !strings.Contains(w[0], "TLS") {
		t.Fatalf("dotted virtual: %q", w)
	}
}
