package adapter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// secretFile writes content to a new file of the given mode and returns its path.
func secretFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by the umask
		t.Fatal(err)
	}
	return p
}

func TestPasswordFileIsReadAtEachCall(t *testing.T) {
	p := secretFile(t, "first-Secret\n", 0o600)
	c, err := configFromEnviron(map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": p})
	if err != nil {
		t.Fatal(err)
	}
	if c.PasswordFile != p || c.Password != "" {
		t.Fatalf("PasswordFile = %q, Password = %q; want the path and no password", c.PasswordFile, c.Password)
	}
	o, err := c.storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.PasswordFunc == nil || o.Password != "" {
		t.Fatalf("store options: PasswordFunc set = %v, Password = %q; want the function and no password", o.PasswordFunc != nil, o.Password)
	}
	if got, err := o.PasswordFunc(); err != nil || got != "first-Secret" {
		t.Fatalf("password = %q, %v; want first-Secret (trailing newline dropped)", got, err)
	}
	// Rotation: the next call reads the file again.
	if err := os.WriteFile(p, []byte("second-Secret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := o.PasswordFunc(); err != nil || got != "second-Secret" {
		t.Fatalf("after rotation, password = %q, %v; want second-Secret", got, err)
	}
	// A file that turns bad later is reported at the next connection,
	// naming the variable, not the content.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = o.PasswordFunc()
	if err == nil || !strings.Contains(err.Error(), "HOLDOVER_PASSWORD_FILE") || !strings.Contains(err.Error(), "0644") ||
		strings.Contains(err.Error(), "second-Secret") {
		t.Fatalf("after chmod 0644, error = %v; want HOLDOVER_PASSWORD_FILE and the mode, never the password", err)
	}
	if s := c.String(); !strings.Contains(s, "password_file="+p) || strings.Contains(s, "Secret") {
		t.Errorf("String() = %s; want the path and never the password", s)
	}
}

func TestPasswordFileProblems(t *testing.T) {
	const secret = "never-Print-me"
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		wants []string
	}{
		{"world-readable", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": secretFile(t, secret, 0o644)},
			[]string{"must not be readable or writable by every user", "has mode 0644", "chmod o-rwx"}},
		{"world-writable", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": secretFile(t, secret, 0o602)},
			[]string{"has mode 0602"}},
		{"missing", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": filepath.Join(dir, "nope")},
			[]string{"must name a readable file", "no such file or directory"}},
		{"directory", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": dir},
			[]string{"must name a regular file", "is a directory"}},
		{"named pipe", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": fifo},
			[]string{"must name a regular file", "is a named pipe"}},
		{"empty", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": secretFile(t, "\n", 0o600)},
			[]string{"is empty"}},
		{"huge", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": secretFile(t, strings.Repeat(secret, 1000), 0o600)},
			[]string{"at most 4096 bytes"}},
		{"with HOLDOVER_PASSWORD", map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD": secret,
			"HOLDOVER_PASSWORD_FILE": secretFile(t, secret, 0o600)}, []string{"not be set together with HOLDOVER_PASSWORD"}},
		{"without user name", map[string]string{"HOLDOVER_PASSWORD_FILE": secretFile(t, secret, 0o600)},
			[]string{"HOLDOVER_USERNAME is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configFromEnviron(tc.env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			msg := err.Error()
			for _, w := range append(tc.wants, "HOLDOVER_PASSWORD_FILE: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error shows the password: %s", msg)
			}
		})
	}
}

// An unreadable file (mode 0000) is refused too, for a process that is not
// root (root reads any file, so this case cannot be shown as root).
func TestPasswordFileUnreadable(t *testing.T) {
	p := secretFile(t, "x", 0o000)
	_, err := configFromEnviron(map[string]string{"HOLDOVER_USERNAME": "app", "HOLDOVER_PASSWORD_FILE": p})
	if os.Geteuid() == 0 {
		if err != nil {
			t.Fatalf("as root, a 0000 file is readable; err = %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v, want permission denied", err)
	}
}

// A TLS file must be a regular file too: a device such as /dev/zero would be
// read without end when the adapter loads it.
func TestTLSFileMustBeRegular(t *testing.T) {
	_, err := configFromEnviron(map[string]string{"HOLDOVER_TLS_CA_FILE": "/dev/zero"})
	if err == nil || !strings.Contains(err.Error(), `HOLDOVER_TLS_CA_FILE: must name a readable file, "/dev/zero": is a device`) {
		t.Fatalf("err = %v; want HOLDOVER_TLS_CA_FILE refused as a device", err)
	}
}
