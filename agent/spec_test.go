package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// TestSpecComplete checks that a connector with only the required keys
// gives a Spec with every setting filled from the key table's defaults:
// backends never re-default.
func TestSpecComplete(t *testing.T) {
	src := `name = "D"
endpoint = "https://s3.example.com"
bucket = "data"
mount_name = "d"
[credentials]
access_key_id = "AK"
secret_name = "k"
`
	a := config.DefaultAgent()
	c, err := config.ParseConnector("/c/d.toml", []byte(src), nil, a)
	if err != nil {
		t.Fatal(err)
	}
	cr := c.Credentials
	cr.SecretName, cr.SecretAccessKey = "", "secret"
	s := specOf(c, a, cr, "/run/s3mounts")
	// Fields a connector may leave zero: no prefix, flags, PATH, a share.
	mayBeZero := map[string]bool{"Prefix": true, "ReadOnly": true, "PathStyle": true, "Binary": true,
		"MaxStaging": true}
	v := reflect.ValueOf(s)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if v.Field(i).IsZero() && !mayBeZero[name] {
			t.Errorf("Spec.%s is zero: buildSpec must fill it (from the connector, whose default is in config's key table)", name)
		}
	}
	d := config.DefaultConnector()
	if s.StallTimeout != 10*time.Second || s.Region != "us-east-1" || s.MaxStagingPercent != 50 ||
		s.Permissions != "connector" || s.MetadataMax != 256<<20 || s.ListConcurrency != 16 ||
		s.StallTimeout != d.StallTimeout {
		t.Fatalf("defaults not carried: %+v", s)
	}
	if s.Credentials.SecretAccessKey.Reveal() != "secret" || s.Credentials.AccessKeyID != "AK" || s.Credentials.SecretName != "" {
		t.Fatal("credentials not carried")
	}
}

// TestSpecCopiesEveryKey sets every connector setting the Spec shares with
// the Connector to a value that is not its default and checks that the Spec
// has it: a new key reaches the worker without a hand-written copy.
func TestSpecCopiesEveryKey(t *testing.T) {
	a := config.DefaultAgent()
	c := config.DefaultConnector()
	cv := reflect.ValueOf(c).Elem()
	st := reflect.TypeOf(mounts.Spec{})
	shared := 0
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		cf := cv.FieldByName(f.Name)
		if !cf.IsValid() || cf.Type() != f.Type || f.Name == "Credentials" {
			continue
		}
		shared++
		switch cf.Kind() {
		case reflect.String:
			cf.SetString("v-" + f.Name)
		case reflect.Int, reflect.Int64:
			cf.SetInt(cf.Int() + 7)
		case reflect.Uint32:
			cf.SetUint(cf.Uint() + 7)
		default:
			t.Fatalf("field %s of kind %s: extend this test", f.Name, cf.Kind())
		}
	}
	s := specOf(c, a, config.Credentials{Anonymous: true}, "/run")
	sv := reflect.ValueOf(s)
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		cf := cv.FieldByName(f.Name)
		if !cf.IsValid() || cf.Type() != f.Type || f.Name == "Credentials" {
			continue
		}
		if !reflect.DeepEqual(sv.Field(i).Interface(), cf.Interface()) {
			t.Errorf("Spec.%s = %v, the connector has %v", f.Name, sv.Field(i).Interface(), cf.Interface())
		}
	}
	if shared < 15 {
		t.Fatalf("only %d fields shared by Connector and Spec", shared)
	}
}

// TestSpecNewKeys checks that permissions, [cache] metadata_max and
// list_concurrency reach the Spec.
func TestSpecNewKeys(t *testing.T) {
	src := `name = "D"
endpoint = "https://s3.example.com"
bucket = "data"
mount_name = "d"
permissions = "object"
list_concurrency = 4
[cache]
metadata_max = "64MiB"
[credentials]
anonymous = true
`
	a := config.DefaultAgent()
	c, err := config.ParseConnector("/c/d.toml", []byte(src), nil, a)
	if err != nil {
		t.Fatal(err)
	}
	s := specOf(c, a, c.Credentials, "/run/s3mounts")
	if s.Permissions != "object" || s.MetadataMax != 64<<20 || s.ListConcurrency != 4 {
		t.Fatalf("got permissions %q, metadata_max %d, list_concurrency %d", s.Permissions, s.MetadataMax, s.ListConcurrency)
	}
}
