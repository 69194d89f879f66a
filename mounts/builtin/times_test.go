package builtin

import (
	"bytes"
	"context"
	"syscall"
	"testing"
)

func TestMTimeFormat(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		text string
	}{
		{1557126489 * 1e9, "1557126489"},
		{1577934245123456789, "1577934245.123456789"},
		{1000000000*1e9 + 5e8, "1000000000.500000000"},
		{1000000000*1e9 + 1, "1000000000.000000001"},
	} {
		if got := formatMTime(c.ns); got != c.text {
			t.Errorf("formatMTime(%d) = %q, want %q", c.ns, got, c.text)
		}
		if got, ok := parseMTime(c.text); !ok || got != c.ns {
			t.Errorf("parseMTime(%q) = %d, %v, want %d", c.text, got, ok, c.ns)
		}
	}
	if ns, ok := parseMTime("1000000000.5"); !ok || ns != 1000000000*1e9+5e8 {
		t.Errorf("parseMTime of a short decimal fraction: %d %v", ns, ok)
	}
	for _, bad := range []string{"", "x", "12x", "1.x", "99999999999999999999"} {
		if _, ok := parseMTime(bad); ok {
			t.Errorf("parseMTime(%q) accepted", bad)
		}
	}
	if ns, ok := metaMTimeOf(map[string]string{"Mtime": "1700000000.25"}); !ok || ns != 1700000000*1e9+25e7 {
		t.Errorf("metaMTimeOf with another case: %d %v", ns, ok)
	}
	if _, ok := metaMTimeOf(map[string]string{"mode": "33188"}); ok {
		t.Error("metaMTimeOf without mtime found one")
	}
}

// TestMetadataThroughClients: uploads carry their metadata (one PUT, and a
// multipart upload), SetMeta replaces it only on the version it was given.
func TestMetadataThroughClients(t *testing.T) {
	ctx := context.Background()
	mc := NewMemClient()
	fc := NewFaultClient(mc)
	f := testFS(fc)
	meta := mtimeMeta(1577934245123456789)
	small := []byte("small")
	if _, err := f.upload(ctx, "small", bytes.NewReader(small), int64(len(small)), meta); err != nil {
		t.Fatal(err)
	}
	big := rnd(putMax + 1)
	if _, err := f.upload(ctx, "big", bytes.NewReader(big), int64(len(big)), meta); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"small", "big"} {
		info, err := fc.Head(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if e := entryOf(info); e.mtime != 1577934245123456789 || !e.headed {
			t.Errorf("%s: entry %+v does not carry the stored mtime", k, e)
		}
	}
	info, _ := fc.Head(ctx, "small")
	stale := info
	with := map[string]string{"mtime": "1", "mode": "33188"}
	if _, err := fc.SetMeta(ctx, info, with); err != nil {
		t.Fatal(err)
	}
	if got := mc.Meta("small"); got["mode"] != "33188" || got["mtime"] != "1" {
		t.Errorf("metadata after SetMeta: %v", got)
	}
	if b, _ := mc.Get("small"); string(b) != "small" {
		t.Errorf("SetMeta changed the content: %q", b)
	}
	mc.Set("small", []byte("replaced by someone else"))
	if _, err := fc.SetMeta(ctx, stale, meta); err == nil {
		t.Error("SetMeta on a replaced version succeeded")
	}
	if toErrno(errMetaTooBig) != syscall.EFBIG {
		t.Error("errMetaTooBig is not EFBIG")
	}
}
