package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// engine.sh start waits for the dockerd it launched by whether the process
// lives, not by its name: for a while after the fork the process still
// bears another name (the script's, until it executes setsid, nohup and
// dockerd). Before, the first look at it could find no "dockerd" in its
// command line and report "dockerd exited during start-up" although it was
// starting (it failed a make test that way). Here a stand-in for setsid
// keeps a name without "dockerd" for 1.5 s before it runs the rest, and
// stand-ins for docker and dockerd say when the engine answers; the script
// must wait for it, say it started, and stop it. Run as another user than
// root, it must refuse to start dockerd and say why.
func TestEngineStartWaitsForTheDockerdItLaunched(t *testing.T) {
	fake := t.TempDir()
	for name, body := range map[string]string{
		"docker": `case "$1" in
info) [[ -f "$FAKE/up" ]] ;;
version) echo fake ;;
*) exit 1 ;;
esac`,
		"dockerd": `trap 'rm -f "$FAKE/up"; exit 0' TERM
touch "$FAKE/up"
while :; do sleep 0.1; done`,
		"setsid": `printf '%s\n' "$@" >"$FAKE/cmd"
exec -a launcher bash -c 'sleep 1.5; mapfile -t a <"$FAKE/cmd"; exec "${a[@]}"'`,
	} {
		if err := os.WriteFile(filepath.Join(fake, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + fake + string(os.PathListSeparator) + os.Getenv("PATH"), "FAKE=" + fake, "E2E_CACHE=" + t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "DOCKER_HOST=") {
			env = append(env, kv)
		}
	}
	run := func(arg string) (string, error) {
		cmd := exec.Command("bash", "engine.sh", arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() { // a start that gave up left its launch running: it becomes the stand-in dockerd
			time.Sleep(2 * time.Second)
			_ = exec.Command("pkill", "-f", filepath.Join(fake, "dockerd")).Run()
		}
	})
	out, err := run("start")
	if os.Getuid() != 0 { // CI runs as root; elsewhere the script must refuse, saying why
		if err == nil || !strings.Contains(out, "run as root and this script starts dockerd") {
			t.Fatalf("engine.sh start as a user with no engine answering: %v\n%s", err, out)
		}
		return
	}
	if err != nil || !strings.Contains(out, "dockerd fake started") {
		t.Fatalf("engine.sh start: %v\n%s", err, out)
	}
	if out, err := run("stop"); err != nil {
		t.Fatalf("engine.sh stop: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(fake, "up")); !os.IsNotExist(err) {
		t.Errorf("the stand-in dockerd still runs after engine.sh stop (%v)", err)
	}
}
