package builtin

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// File times in object metadata, in s3fs's convention: x-amz-meta-mtime
// holds seconds since the epoch as a decimal string. s3fs 1.90 writes whole
// seconds ("1606780800"); rclone writes fractional seconds
// ("1606780800.123456789"); s3fs 1.90 reads "sec.nsec" (the part after the
// dot as an integer of nanoseconds). We write whole seconds when the time
// has no fraction, and seconds with exactly nine decimals otherwise (so
// that rsync, which compares nanoseconds, sees the time it set); we read
// both.
const metaMTime = "mtime"

// mtimeKeys are the metadata names read for a file's mtime, in order.
var mtimeKeys = []string{metaMTime, "goog-reserved-file-mtime"}

// formatMTime is x-amz-meta-mtime's value for t (unix nanoseconds).
func formatMTime(ns int64) string {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	if frac == 0 {
		return strconv.FormatInt(sec, 10)
	}
	// Always nine digits: s3fs reads the part after the dot as an integer
	// number of nanoseconds (".25" would be 25 ns there).
	return strconv.FormatInt(sec, 10) + "." + formatFrac(frac)
}

func formatFrac(frac int64) string {
	s := strconv.FormatInt(frac, 10)
	return strings.Repeat("0", 9-len(s)) + s
}

// parseMTime reads a decimal number of seconds ("1606780800",
// "1606780800.5", "1606780800.123456789") into unix nanoseconds.
func parseMTime(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	secPart, fracPart, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secPart, 10, 64)
	if err != nil || sec > math.MaxInt64/int64(time.Second)-1 || sec < math.MinInt64/int64(time.Second)+1 {
		return 0, false
	}
	var frac int64
	if hasFrac {
		if len(fracPart) > 9 {
			fracPart = fracPart[:9]
		}
		if fracPart != "" {
			f, err := strconv.ParseUint(fracPart, 10, 32)
			if err != nil {
				return 0, false
			}
			frac = int64(f)
			for i := len(fracPart); i < 9; i++ {
				frac *= 10
			}
		}
	}
	return sec*1e9 + frac, true
}

// metaMTimeOf returns the mtime stored in an object's metadata, if any.
func metaMTimeOf(meta map[string]string) (int64, bool) {
	for _, k := range mtimeKeys {
		for mk, v := range meta {
			if strings.EqualFold(mk, k) {
				if ns, ok := parseMTime(v); ok {
					return ns, true
				}
			}
		}
	}
	return 0, false
}

// entryOf is what a HEAD says of a file: its mtime from the metadata, else
// LastModified.
func entryOf(info ObjInfo) entry {
	e := entry{size: info.Size, mtime: info.MTime.UnixNano(), etag: info.ETag, headed: true, lm: info.MTime.Unix()}
	if ns, ok := metaMTimeOf(info.Meta); ok {
		e.mtime = ns
	}
	e.link = isLinkMeta(info.Meta)
	if len(info.Meta) > 0 {
		e.meta = info.Meta
	}
	return e
}

// uploadMeta is the metadata of a new version of an object that had old:
// its other user metadata (s3fs's mode/uid/gid, xattrs written by other
// tools) is kept; its stored mtime is dropped (the upload's LastModified
// is the new mtime) unless one was set with utimensat (set).
func uploadMeta(old map[string]string, set bool, ns int64) map[string]string {
	var out map[string]string
	for k, v := range old {
		if isMTimeKey(k) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(old)+1)
		}
		out[k] = v
	}
	if set {
		if out == nil {
			out = make(map[string]string, 1)
		}
		out[metaMTime] = formatMTime(ns)
	}
	return out
}

func isMTimeKey(k string) bool {
	for _, mk := range mtimeKeys {
		if strings.EqualFold(k, mk) {
			return true
		}
	}
	return false
}

// mtimeMeta is the metadata that stores mtime ns.
func mtimeMeta(ns int64) map[string]string {
	return map[string]string{metaMTime: formatMTime(ns)}
}
