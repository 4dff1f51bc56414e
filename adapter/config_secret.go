package adapter

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// maxSecretFileBytes bounds a secret file (HOLDOVER_PASSWORD_FILE): a
// password, not a stream.
const maxSecretFileBytes = 4096

// checkSecrets checks HOLDOVER_PASSWORD_FILE against the other credentials
// and reads it once, so that a file Open could not use is reported with
// every other problem.
func (c Config) checkSecrets(k *checker, v string) {
	if c.PasswordFile == "" {
		return
	}
	if c.Password != "" {
		k.add(v, "must not be set together with HOLDOVER_PASSWORD; set one of them")
	}
	if c.Username == "" {
		k.add(v, "is set but HOLDOVER_USERNAME is empty; set both or neither")
	}
	if _, err := readSecretFile(c.PasswordFile); err != nil {
		k.add(v, "%v", err)
	}
}

// passwordSource returns the function the store calls for the password at
// each new connection when it comes from HOLDOVER_PASSWORD_FILE, or nil.
// Its errors name the variable and the path, never the file's content.
func (c Config) passwordSource() func() (string, error) {
	if c.PasswordFile == "" {
		return nil
	}
	path := c.PasswordFile
	return func() (string, error) {
		p, err := readSecretFile(path)
		if err != nil {
			return "", fmt.Errorf("HOLDOVER_PASSWORD_FILE: %w", err)
		}
		return p, nil
	}
}

// readSecretFile returns the content of the secret file at path without one
// trailing newline ("\n" or "\r\n"). It refuses, with an error that names the
// path and the rule but never the content, a file it cannot read, anything
// but a regular file, a file readable or writable by every user, an empty
// file and one over 4096 bytes. It opens without blocking, so a FIFO named
// by mistake is refused rather than waited on.
func readSecretFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", unreadableSecret(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", unreadableSecret(path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("must name a regular file, %q is %s", path, fileKind(st.Mode()))
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 {
		return "", fmt.Errorf("must not be readable or writable by every user, %q has mode %04o: "+
			"remove those permissions (chmod o-rwx; in Kubernetes defaultMode: 0440 on the secret volume, "+
			"in Docker Compose mode: 0440 on the secret)", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", unreadableSecret(path, err)
	}
	if len(data) > maxSecretFileBytes {
		return "", fmt.Errorf("must name a file of at most %d bytes, %q is larger", maxSecretFileBytes, path)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("must name a file holding the password, %q is empty", path)
	}
	return s, nil
}

// unreadableSecret words a failure to read the secret file at path.
func unreadableSecret(path string, err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err // the path is printed once, quoted
	}
	return fmt.Errorf("must name a readable file, %q: %v", path, err)
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}
