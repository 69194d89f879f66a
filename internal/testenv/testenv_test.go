package testenv

import "testing"

func TestMinIOStarts(t *testing.T) {
	m := StartMinIO(t)
	m.MakeBucket(t, "hello.dots", map[string]string{"a.txt": "hi"})
}
