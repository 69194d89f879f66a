package builtin

import "testing"

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
