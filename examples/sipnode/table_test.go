package main

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/holdover/holdover/adapter"
)

func TestTableCommitHookSeesOnlyChanges(t *testing.T) {
	tb := NewTable()
	var got [][]adapter.Change
	var ends []string
	tb.OnCommit = func(s string, ch []adapter.Change, ended bool) error {
		if ended {
			ends = append(ends, s)
		}
		got = append(got, ch)
		return nil
	}
	tx := tb.Begin("call:1")
	tx.Put("a", []byte("1"))
	tx.Put("b", []byte("2"))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx.Put("a", []byte("1")) // unchanged: no change
	tx.Put("b", []byte("3"))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil { // nothing: no hook call
		t.Fatal(err)
	}
	tx.Close()
	if len(got) != 2 || len(got[0]) != 2 || len(got[1]) != 1 || got[1][0].Key != "b" {
		t.Fatalf("hook saw %+v", got)
	}
	if tb.Len() != 1 {
		t.Fatalf("Len %d, want 1", tb.Len())
	}
	tx = tb.Begin("call:1")
	tx.End()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if len(ends) != 1 || tb.Len() != 0 {
		t.Fatalf("ends %v, Len %d", ends, tb.Len())
	}
}

func TestTableRefusedCommitAppliesNothing(t *testing.T) {
	tb := NewTable()
	refuse := errors.New("refused")
	tb.OnCommit = func(string, []adapter.Change, bool) error { return refuse }
	tx := tb.Begin("call:1")
	tx.Put("a", []byte("1"))
	if err := tx.Commit(); !errors.Is(err, refuse) {
		t.Fatalf("Commit: %v", err)
	}
	if tx.Resident() {
		t.Fatal("a refused first commit left the session resident")
	}
	tx.Close()
	if tb.Len() != 0 {
		t.Fatalf("Len %d", tb.Len())
	}
}

func TestTableRestoreAndDrop(t *testing.T) {
	tb := NewTable()
	tx := tb.Begin("call:1")
	tx.Restore(map[string][]byte{"a": []byte("1")})
	tx.Close()
	if tb.Len() != 1 {
		t.Fatalf("Len %d", tb.Len())
	}
	tb.Drop("call:1")
	tx = tb.Begin("call:1")
	if tx.Resident() {
		t.Fatal("dropped session still resident")
	}
	tx.Close()
}

// Transactions on one session run one at a time; on different sessions in
// parallel (run with -race).
func TestTableSerialisesASession(t *testing.T) {
	tb := NewTable()
	tb.OnCommit = func(string, []adapter.Change, bool) error { return nil }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := fmt.Sprintf("call:%d", i%4)
				tx := tb.Begin(id)
				n := len(tx.Items())
				tx.Put(fmt.Sprintf("k%d-%d", g, i), []byte("v"))
				if err := tx.Commit(); err != nil {
					t.Error(err)
				}
				if len(tx.Items()) != n+1 {
					t.Errorf("%s: %d items after commit, want %d", id, len(tx.Items()), n+1)
				}
				if i%50 == 49 {
					tx.End()
					_ = tx.Commit()
				}
				tx.Close()
			}
		}()
	}
	wg.Wait()
}
