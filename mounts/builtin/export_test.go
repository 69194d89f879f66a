package builtin

// SetPlusLimit lowers the READDIRPLUS inode limit for a test; the returned
// func restores it.
func SetPlusLimit(n int) func() {
	old := plusLimit
	plusLimit = n
	return func() { plusLimit = old }
}

// Resumes is how many GET bodies were resumed after a break so far.
func Resumes() int64 { return resumes.Load() }
