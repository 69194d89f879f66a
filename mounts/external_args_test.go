package mounts

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func shapeSpec(t *testing.T) Spec {
	rt := filepath.Join(t.TempDir(), "run", "c1")
	return Spec{
		ID: "c1", MountPoint: "/home/jupyter/mnt/s3/data", Endpoint: "http://127.0.0.1:9000",
		Region: "eu-west-1", Bucket: "ml.datasets", PathStyle: true,
		UID: 1000, GID: 100, FileMode: 0o644, DirMode: 0o755,
		StallTimeout: 10 * time.Second, MetadataTTL: 60 * time.Second, NegativeTTL: 5 * time.Second,
		CacheDir: "/var/cache/s3mounts/c1", RuntimeDir: rt,
		Credentials: Credentials{AccessKeyID: "AKID", SecretAccessKey: "s3cr3t-value"},
	}
}

func TestS3FSArgs(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Spec)
		want   func(s Spec) []string
		env    []string
		files  []string // base names
		passwd string
	}{
		{
			name:   "rw, no prefix, path style, plain keys",
			modify: func(*Spec) {},
			want: func(s Spec) []string {
				return []string{"ml.datasets", "/home/jupyter/mnt/s3/data", "-f",
					"-o", "url=http://127.0.0.1:9000", "-o", "endpoint=eu-west-1", "-o", "use_path_request_style",
					"-o", "allow_other", "-o", "default_permissions", "-o", "uid=1000", "-o", "gid=100",
					"-o", "umask=0022", "-o", "mp_umask=0022",
					"-o", "passwd_file=" + filepath.Join(s.RuntimeDir, "passwd-s3fs"),
					"-o", "tmpdir=/var/cache/s3mounts/c1", "-o", "stat_cache_expire=60",
					"-o", "connect_timeout=10", "-o", "readwrite_timeout=9", "-o", "retries=1",
					"-o", "instance_name=c1", "-o", "dbglevel=err"}
			},
			files:  []string{"passwd-s3fs"},
			passwd: "AKID:s3cr3t-value\n",
		},
		{
			name: "ro, prefix, virtual style, owner and modes, session token",
			modify: func(s *Spec) {
				s.ReadOnly, s.Prefix, s.PathStyle = true, "team-a/raw/", false
				s.Endpoint = "https://storage.yandexcloud.net/"
				s.UID, s.GID, s.FileMode, s.DirMode = 1001, 2000, 0o640, 0o750
				s.MetadataTTL, s.StallTimeout = 1500*time.Millisecond, 2500*time.Millisecond
				s.Credentials.SessionToken = "tok-value"
			},
			want: func(s Spec) []string {
				return []string{"ml.datasets:/team-a/raw", "/home/jupyter/mnt/s3/data", "-f",
					"-o", "url=https://storage.yandexcloud.net", "-o", "endpoint=eu-west-1", "-o", "ro",
					"-o", "allow_other", "-o", "default_permissions", "-o", "uid=1001", "-o", "gid=2000",
					"-o", "umask=0027", "-o", "mp_umask=0027",
					"-o", "use_session_token",
					"-o", "tmpdir=/var/cache/s3mounts/c1", "-o", "stat_cache_expire=2",
					"-o", "connect_timeout=3", "-o", "readwrite_timeout=2", "-o", "retries=1",
					"-o", "instance_name=c1", "-o", "dbglevel=err"}
			},
			env: []string{"AWSACCESSKEYID=AKID", "AWSSECRETACCESSKEY=s3cr3t-value", "AWSSESSIONTOKEN=tok-value"},
		},
		{
			name: "anonymous, region us-east-1, no metadata cache, shared rw modes",
			modify: func(s *Spec) {
				s.Credentials = Credentials{Anonymous: true}
				s.Region, s.MetadataTTL, s.FileMode, s.DirMode = "us-east-1", 0, 0o664, 0o775
			},
			want: func(s Spec) []string {
				return []string{"ml.datasets", "/home/jupyter/mnt/s3/data", "-f",
					"-o", "url=http://127.0.0.1:9000", "-o", "endpoint=us-east-1", "-o", "use_path_request_style",
					"-o", "allow_other", "-o", "default_permissions", "-o", "uid=1000", "-o", "gid=100",
					"-o", "umask=0002", "-o", "mp_umask=0002",
					"-o", "public_bucket=1",
					"-o", "tmpdir=/var/cache/s3mounts/c1", "-o", "max_stat_cache_size=0",
					"-o", "connect_timeout=10", "-o", "readwrite_timeout=9", "-o", "retries=1",
					"-o", "instance_name=c1", "-o", "dbglevel=err"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := shapeSpec(t)
			tt.modify(&s)
			if err := prepareDirs(s); err != nil {
				t.Fatal(err)
			}
			k, err := resolveKeys(t.Context(), s, nil)
			if err != nil {
				t.Fatal(err)
			}
			pl, err := s3fsTool{}.plan(s, k)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(s); !reflect.DeepEqual(pl.args, want) {
				t.Errorf("argv\n got %q\nwant %q", pl.args, want)
			}
			if !reflect.DeepEqual(pl.env, tt.env) {
				t.Errorf("env: got %q, want %q", pl.env, tt.env)
			}
			for _, a := range pl.args {
				if strings.Contains(a, "s3cr3t") || strings.Contains(a, "tok-value") {
					t.Errorf("a secret is on the command line: %q", a)
				}
			}
			checkFiles(t, s, pl.files, tt.files)
			if tt.passwd != "" {
				b, err := os.ReadFile(pl.files[0])
				if err != nil || string(b) != tt.passwd {
					t.Errorf("passwd file = %q, %v; want %q", b, err, tt.passwd)
				}
			}
			if err := removeFiles(pl.files...); err != nil {
				t.Fatal(err)
			}
			left, _ := os.ReadDir(s.RuntimeDir)
			if len(left) != 0 {
				t.Errorf("runtime dir not empty after removing the files: %v", left)
			}
		})
	}
}

// checkFiles: exactly the named files exist, mode 0600, in a 0700 dir.
func checkFiles(t *testing.T, s Spec, files, want []string) {
	t.Helper()
	var got []string
	for _, f := range files {
		if filepath.Dir(f) != s.RuntimeDir {
			t.Errorf("%s is outside the runtime dir %s", f, s.RuntimeDir)
		}
		got = append(got, filepath.Base(f))
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	st, err := os.Stat(s.RuntimeDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir mode %v, want 0700", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(s.RuntimeDir)
	if len(entries) != len(want) {
		t.Errorf("runtime dir holds %d entries, want %d (no temp files left)", len(entries), len(want))
	}
}

func TestS3FSRefusesCommas(t *testing.T) {
	s := shapeSpec(t)
	s.CacheDir = "/var/cache/a,b"
	if err := NewS3FS(nil).Available(s); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Fatalf("Available = %v; want a comma error", err)
	}
}

func TestGeeseFSArgs(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Spec)
		want   func(s Spec) []string
		config string
	}{
		{
			name:   "rw, no prefix, path style, plain keys",
			modify: func(*Spec) {},
			want: func(s Spec) []string {
				return []string{"--endpoint", "http://127.0.0.1:9000", "--region", "eu-west-1",
					"--shared-config", filepath.Join(s.RuntimeDir, "geesefs-credentials"), "--profile", "s3mounts",
					"--uid", "1000", "--gid", "100", "--setuid", "0", "--setgid", "0",
					"--file-mode", "0644", "--dir-mode", "0755", "--cache", "/var/cache/s3mounts/c1",
					"--stat-cache-ttl", "1m0s", "--http-timeout", "30s", "--fsync-on-close",
					"-o", "allow_other", "-o", "default_permissions",
					"-f", "ml.datasets", "/home/jupyter/mnt/s3/data"}
			},
			config: "[s3mounts]\naws_access_key_id = AKID\naws_secret_access_key = s3cr3t-value\n",
		},
		{
			name: "ro, prefix, virtual style, owner and modes, session token",
			modify: func(s *Spec) {
				s.ReadOnly, s.Prefix, s.PathStyle = true, "team-a/", false
				s.UID, s.GID, s.FileMode, s.DirMode = 1001, 2000, 0o640, 0o750
				s.MetadataTTL, s.StallTimeout, s.CacheDir = 0, 5*time.Second, ""
				s.Credentials.SessionToken = "tok-value"
			},
			want: func(s Spec) []string {
				return []string{"--endpoint", "http://127.0.0.1:9000", "--region", "eu-west-1", "--subdomain",
					"--shared-config", filepath.Join(s.RuntimeDir, "geesefs-credentials"), "--profile", "s3mounts",
					"--uid", "1001", "--gid", "2000", "--setuid", "0", "--setgid", "0",
					"--file-mode", "0640", "--dir-mode", "0750",
					"--stat-cache-ttl", "0s", "--http-timeout", "15s", "--fsync-on-close",
					"-o", "allow_other", "-o", "default_permissions", "-o", "ro",
					"-f", "ml.datasets:team-a/", "/home/jupyter/mnt/s3/data"}
			},
			config: "[s3mounts]\naws_access_key_id = AKID\naws_secret_access_key = s3cr3t-value\naws_session_token = tok-value\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := shapeSpec(t)
			tt.modify(&s)
			if err := prepareDirs(s); err != nil {
				t.Fatal(err)
			}
			k, err := resolveKeys(t.Context(), s, nil)
			if err != nil {
				t.Fatal(err)
			}
			pl, err := geesefsTool{}.plan(s, k)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(s); !reflect.DeepEqual(pl.args, want) {
				t.Errorf("argv\n got %q\nwant %q", pl.args, want)
			}
			if len(pl.env) != 0 {
				t.Errorf("geesefs gets credentials by file only; env %q", pl.env)
			}
			for _, a := range pl.args {
				if strings.Contains(a, "s3cr3t") || strings.Contains(a, "tok-value") {
					t.Errorf("a secret is on the command line: %q", a)
				}
			}
			checkFiles(t, s, pl.files, []string{"geesefs-credentials"})
			b, _ := os.ReadFile(pl.files[0])
			if string(b) != tt.config {
				t.Errorf("config file\n got %q\nwant %q", b, tt.config)
			}
			removeFiles(pl.files...)
			if left, _ := os.ReadDir(s.RuntimeDir); len(left) != 0 {
				t.Errorf("runtime dir not empty after removing the files: %v", left)
			}
		})
	}
}

func TestGeeseFSRefreshableCredentials(t *testing.T) {
	s := shapeSpec(t)
	s.Credentials = Credentials{Profile: "team", RoleARN: "arn:aws:iam::1:role/r"}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	calls := 0
	resolver := func(_ context.Context, sp Spec) (Credentials, time.Time, error) {
		calls++
		return Credentials{AccessKeyID: "ASIA" + strconv.Itoa(calls), SecretAccessKey: "sec", SessionToken: "tok"}, exp, nil
	}
	if err := prepareDirs(s); err != nil {
		t.Fatal(err)
	}
	k, err := resolveKeys(t.Context(), s, resolver)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := geesefsTool{}.plan(s, k)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, s, pl.files, []string{"geesefs-credentials.json", "geesefs-credentials"})
	cfg, _ := os.ReadFile(geesefsConfigFile(s))
	wantCfg := "[s3mounts]\ncredential_process = " + catBinary() + " '" + geesefsProcessFile(s) + "'\n"
	if string(cfg) != wantCfg {
		t.Errorf("config\n got %q\nwant %q", cfg, wantCfg)
	}
	readJSON := func() map[string]any {
		b, err := os.ReadFile(geesefsProcessFile(s))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := readJSON()
	if m["Version"] != 1.0 || m["AccessKeyId"] != "ASIA1" || m["SecretAccessKey"] != "sec" ||
		m["SessionToken"] != "tok" || m["Expiration"] != "2030-01-02T03:04:05Z" {
		t.Errorf("credential_process output %v", m)
	}
	k2, err := resolveKeys(t.Context(), s, resolver)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := (geesefsTool{}).updateInPlace(s, k2); !ok || err != nil {
		t.Fatalf("updateInPlace = %v, %v; want true", ok, err)
	}
	if m := readJSON(); m["AccessKeyId"] != "ASIA2" {
		t.Errorf("refreshed keys not written: %v", m)
	}
	checkFiles(t, s, pl.files, []string{"geesefs-credentials.json", "geesefs-credentials"})
}

func TestRefreshAt(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		k    keys
		want time.Time
	}{
		{keys{Credentials: Credentials{AccessKeyID: "a"}}, time.Time{}},
		{keys{Credentials: Credentials{SessionToken: "t"}, Expires: now.Add(time.Hour)}, time.Time{}}, // static token: nobody to ask again
		{keys{Refreshable: true}, time.Time{}},
		{keys{Refreshable: true, Expires: now.Add(time.Hour)}, now.Add(40 * time.Minute)},
		{keys{Refreshable: true, Expires: now.Add(90 * time.Second)}, now.Add(30 * time.Second)},
		{keys{Refreshable: true, Expires: now.Add(-time.Minute)}, now},
	}
	for _, tt := range tests {
		if got := tt.k.refreshAt(now); !got.Equal(tt.want) {
			t.Errorf("refreshAt(%+v) = %v, want %v", tt.k, got, tt.want)
		}
	}
}

func TestAvailableMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s := shapeSpec(t)
	err := NewGeeseFS(nil).Available(s)
	if err == nil || !strings.Contains(err.Error(), `backend geesefs is not installed`) ||
		!strings.Contains(err.Error(), `use backend = "default"`) || !strings.Contains(err.Error(), "PATH") {
		t.Fatalf("Available = %v", err)
	}
	s.Binary = "/nonexistent/geesefs"
	err = NewGeeseFS(nil).Available(s)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/geesefs") || !strings.Contains(err.Error(), "[binaries]") {
		t.Fatalf("Available with Binary = %v", err)
	}
	if _, err := NewS3FS(nil).Mount(t.Context(), s); err == nil || !strings.Contains(err.Error(), "backend s3fs is not installed") {
		t.Fatalf("Mount without the binary = %v", err)
	}
}

func TestGeeseFSRefusesAnonymous(t *testing.T) {
	s := shapeSpec(t)
	s.Credentials = Credentials{Anonymous: true}
	s.Binary = "/bin/true"
	if err := NewGeeseFS(nil).Available(s); err == nil || !strings.Contains(err.Error(), "anonymous") {
		t.Fatalf("Available = %v", err)
	}
}

func TestResolveKeysWithoutResolver(t *testing.T) {
	s := shapeSpec(t)
	s.Backend = "s3fs"
	s.Credentials = Credentials{Profile: "p"}
	if _, err := resolveKeys(t.Context(), s, nil); err == nil || !strings.Contains(err.Error(), "resolver") {
		t.Fatalf("resolveKeys = %v", err)
	}
}

func TestBaseEnv(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := shapeSpec(t)
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("AWS_ACCESS_KEY_ID", "agent-own-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "agent-own-secret")
	t.Setenv("AWS_PROFILE", "agent-profile")
	t.Setenv("SSL_CERT_FILE", "")
	t.Setenv("SSL_CERT_DIR", "")
	tests := []struct {
		name       string
		aws, curl  string
		wantAWS    string
		wantCURL   string
		wantAbsent []string
	}{
		{"AWS_CA_BUNDLE stands in for curl", bundle, "", bundle, bundle, nil},
		{"CURL_CA_BUNDLE wins", bundle, bundle, bundle, bundle, nil},
		{"unreadable bundles are dropped", "/nonexistent/ca.pem", "/nonexistent/curl.pem", "", "", []string{"AWS_CA_BUNDLE=", "CURL_CA_BUNDLE="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_CA_BUNDLE", tt.aws)
			t.Setenv("CURL_CA_BUNDLE", tt.curl)
			env := baseEnv(s)
			joined := strings.Join(env, "\n") + "\n"
			if !strings.Contains(joined, "PATH=/usr/bin:/bin\n") || !strings.Contains(joined, "HOME="+s.RuntimeDir+"\n") {
				t.Errorf("env lacks PATH or HOME in the runtime dir: %q", env)
			}
			if strings.Contains(joined, "agent-own") || strings.Contains(joined, "AWS_PROFILE") {
				t.Errorf("the agent's own AWS settings leak into the tool: %q", env)
			}
			if tt.wantAWS != "" && !strings.Contains(joined, "AWS_CA_BUNDLE="+tt.wantAWS+"\n") {
				t.Errorf("AWS_CA_BUNDLE missing: %q", env)
			}
			if tt.wantCURL != "" && !strings.Contains(joined, "CURL_CA_BUNDLE="+tt.wantCURL+"\n") {
				t.Errorf("CURL_CA_BUNDLE missing: %q", env)
			}
			for _, a := range tt.wantAbsent {
				if strings.Contains(joined, a) {
					t.Errorf("%s passed on: %q", a, env)
				}
			}
		})
	}
}

// TestS3FSStallOptions: s3fs's timeouts follow stall_timeout so that one
// request ends about stall_timeout after its last byte, with one attempt
// (s3fs pauses 4 s after each timed-out attempt: retries multiply that).
func TestS3FSStallOptions(t *testing.T) {
	for _, tc := range []struct {
		stall       time.Duration
		connect, rw string
		bound       time.Duration
	}{
		{time.Second, "connect_timeout=1", "readwrite_timeout=1", 4 * (2 + 4) * time.Second},
		{2 * time.Second, "connect_timeout=2", "readwrite_timeout=1", 4 * (2 + 4) * time.Second},
		{10 * time.Second, "connect_timeout=10", "readwrite_timeout=9", 4 * (10 + 4) * time.Second},
	} {
		s := Spec{ID: "c", Bucket: "b", MountPoint: "/m", StallTimeout: tc.stall}
		args := strings.Join(s3fsArgs(s, nil), " ") + " "
		for _, want := range []string{tc.connect, tc.rw, "retries=1"} {
			if !strings.Contains(args, "-o "+want+" ") {
				t.Errorf("stall %s: args lack %s: %s", tc.stall, want, args)
			}
		}
		if got := S3FSOpBound(tc.stall); got != tc.bound {
			t.Errorf("stall %s: S3FSOpBound = %s, want %s", tc.stall, got, tc.bound)
		}
	}
}
