package soak

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCluster records what the nemesis asks of it.
type fakeCluster struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeCluster) do(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return nil
}
func (f *fakeCluster) Kill(n string) error                     { return f.do("kill " + n) }
func (f *fakeCluster) Term(n string) error                     { return f.do("term " + n) }
func (f *fakeCluster) Stop(n string) error                     { return f.do("stop " + n) }
func (f *fakeCluster) Cont(n string) error                     { return f.do("cont " + n) }
func (f *fakeCluster) Start(_ context.Context, n string) error { return f.do("start " + n) }
func (f *fakeCluster) StallCassandra(time.Duration) error      { return f.do("stall") }
func (f *fakeCluster) ResumeCassandra() error                  { return f.do("resume") }
func (f *fakeCluster) Partition(n string) error                { return f.do("partition " + n) }
func (f *fakeCluster) Heal(n string) error                     { return f.do("heal " + n) }
func (f *fakeCluster) Wait(n string, _ time.Duration) (bool, string) {
	_ = f.do("wait " + n)
	return true, "exit status 0"
}
func (f *fakeCluster) Replace(_ context.Context, n string) (string, error) {
	return "http://127.0.0.1:1", f.do("replace " + n)
}

func testNemesis(t *testing.T, cl Cluster) (*nemesis, *[]Record) {
	var recs []Record
	var mu sync.Mutex
	h, err := CreateHistory(filepath.Join(t.TempDir(), "h.jsonl"), func(r Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	nodes := []NodeInfo{{Name: "n1"}, {Name: "n2"}}
	v := &view{state: make([]nodeState, 2), inc: make([]int, 2), url: make([]string, 2), zombie: make([]zombie, 2)}
	return &nemesis{cl: cl, hist: h, view: v, nodes: nodes, index: map[string]int{"n1": 0, "n2": 1},
		episodes: map[string]int{}, vgen: make([]int, 2)}, &recs
}

// TestNemesisAlwaysContinuesCassandra: an interrupted stall still ends with
// SIGCONT of Cassandra.
func TestNemesisAlwaysContinuesCassandra(t *testing.T) {
	cl := &fakeCluster{}
	n, _ := testNemesis(t, cl)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	plan := []Episode{{Kind: EpStall, HoldMS: 60_000}}
	if err := n.run(ctx, plan, time.Now().Add(time.Hour), time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cl.calls, []string{"stall", "resume"}) {
		t.Fatalf("calls %v", cl.calls)
	}
}

// TestNemesisEpisodes: each kind does its steps, records them, and leaves
// the view with every node up (a restarted one in a new incarnation).
func TestNemesisEpisodes(t *testing.T) {
	cl := &fakeCluster{}
	n, recs := testNemesis(t, cl)
	plan := []Episode{
		{Kind: EpKill, Node: "n1", DownMS: 1},
		{Kind: EpPause, Node: "n2", HoldMS: 1},
		{Kind: EpTermKill, Node: "n1", HoldMS: 1, DownMS: 1},
		{Kind: EpRestart, Node: "n2", DownMS: 1},
		{Kind: EpReplace, Node: "n1", HoldMS: 1, DownMS: 1},
		{Kind: EpPartition, Node: "n2", HoldMS: 1},
	}
	if err := n.run(context.Background(), plan, time.Now().Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if st, _ := n.view.get(i); st != nodeUp {
			t.Fatalf("node %d is %v", i, st)
		}
	}
	if _, inc := n.view.get(0); inc != 3 { // kill, term-kill, replace
		t.Fatalf("n1 incarnation %d", inc)
	}
	var kinds []string
	for _, r := range *recs {
		kinds = append(kinds, r.Kind+" "+r.Node)
	}
	want := []string{"kill n1", "restart n1", "pause n2", "resume n2", "term n1", "drained n1", "restart n1",
		"term n2", "drained n2", "restart n2", "pause n1", "replace n1", "resume n1~zombie", "term n1~zombie", "drained n1~zombie",
		"partition n2", "heal n2"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("records %v\nwant %v", kinds, want)
	}
}

// TestNemesisAlwaysHealsAPartition: an interrupted partition still ends
// with the node reconnected, and the node is up in the same incarnation.
func TestNemesisAlwaysHealsAPartition(t *testing.T) {
	cl := &fakeCluster{}
	n, _ := testNemesis(t, cl)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	plan := []Episode{{Kind: EpPartition, Node: "n1", HoldMS: 60_000}}
	if err := n.run(ctx, plan, time.Now().Add(time.Hour), time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cl.calls, []string{"partition n1", "heal n1"}) {
		t.Fatalf("calls %v", cl.calls)
	}
	if st, inc := n.view.get(0); st != nodeUp || inc != 0 {
		t.Fatalf("n1 is %v in incarnation %d after the partition healed", st, inc)
	}
}

// TestNemesisTakeover: an episode with TakeoverBy asks that node, once the
// failed node's lease has passed, to take over the failed node's sessions,
// and records the answer; no takeover is asked of a node that is back.
func TestNemesisTakeover(t *testing.T) {
	var asked atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/takeover/id-1" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		if asked.Add(1) == 1 {
			http.Error(w, `{"error":"node \"id-1\" is live","owner":"id-1"}`, http.StatusConflict)
			return
		}
		fmt.Fprint(w, `{"from":"id-1","node":"id-2","listed":7,"adopted":6,"restored":6,"skipped":1,"failed":0,"duration_ms":12}`)
	}))
	defer srv.Close()
	cl := &fakeCluster{}
	n, recs := testNemesis(t, cl)
	n.nodes[0].ID, n.nodes[1].ID = "id-1", "id-2"
	n.view.url[1] = srv.URL
	n.takeoverAfter, n.takeoverFor, n.cl2 = 150*time.Millisecond, time.Second, client{hc: srv.Client()}
	plan := []Episode{{Kind: EpPause, Node: "n1", HoldMS: 600, TakeoverBy: "n2"}, {Kind: EpKill, Node: "n1", DownMS: 1, TakeoverBy: "n2"}}
	if err := n.run(context.Background(), plan, time.Now().Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 2 {
		t.Fatalf("%d takeovers asked, want 2: one refused (lease live), one done; none for the killed node, back before its takeover was due", asked.Load())
	}
	var got []Record
	for _, r := range *recs {
		if r.Kind == OpTakeover {
			got = append(got, r)
		}
	}
	if len(got) != 1 || got[0].Node != "n2" || got[0].From != "n1" || got[0].Outcome != OutAck || got[0].Attempts != 2 ||
		got[0].Detail != "listed=7 adopted=6 restored=6 skipped=1 failed=0 in 12 ms" {
		t.Fatalf("takeover records %+v", got)
	}
}
