package harness

import (
	"context"
	"fmt"
	"time"
)

// OwnershipResult is the cost of the lightweight transactions behind
// ownership beside plain statements on the same rows, in milliseconds.
type OwnershipResult struct {
	CreateLWTP50, CreateLWTP99     float64 // INSERT ... IF NOT EXISTS (a brand-new session's first flush)
	PlainInsertP50, PlainInsertP99 float64 // the same INSERT without the condition
	ClaimP50, ClaimP99             float64 // UPDATE ... IF owner = ? AND epoch = ? (adoption)
	PlainReadP50, PlainReadP99     float64 // SELECT of the ownership row
}

// Ownership measures n of each statement, interleaved.
func (e *Env) Ownership(ctx context.Context, n int) (OwnershipResult, error) {
	s, err := e.cluster().CreateSession()
	if err != nil {
		return OwnershipResult{}, err
	}
	defer s.Close()
	ks := e.Keyspace
	create := fmt.Sprintf(`INSERT INTO %s.owners (session, owner, epoch, released, claimed_at) VALUES (?, ?, 1, false, ?) IF NOT EXISTS USING TTL 3600`, ks)
	plain := fmt.Sprintf(`INSERT INTO %s.owners (session, owner, epoch, released, claimed_at) VALUES (?, ?, 1, false, ?) USING TTL 3600`, ks)
	claim := fmt.Sprintf(`UPDATE %s.owners USING TTL 3600 SET owner = ?, epoch = 2, released = false, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = 1`, ks)
	read := fmt.Sprintf(`SELECT owner, epoch, released, claimed_at FROM %s.owners WHERE session = ?`, ks)
	var c, p, cl, r []float64
	timed := func(f func() error) (float64, error) {
		began := time.Now()
		err := f()
		return ms(time.Since(began)), err
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("own-%d", i)
		d, err := timed(func() error {
			ok, err := s.Query(create, id, "a", time.Now()).SerialConsistency(anchorSerial).MapScanCASContext(ctx, map[string]any{})
			if err == nil && !ok {
				err = fmt.Errorf("create of %s not applied", id)
			}
			return err
		})
		if err != nil {
			return OwnershipResult{}, err
		}
		c = append(c, d)
		if d, err = timed(func() error {
			return s.Query(plain, "plain-"+id, "a", time.Now()).ExecContext(ctx)
		}); err != nil {
			return OwnershipResult{}, err
		}
		p = append(p, d)
		if d, err = timed(func() error {
			var (
				o  string
				ep int64
				rl bool
				at time.Time
			)
			return s.Query(read, id).ScanContext(ctx, &o, &ep, &rl, &at)
		}); err != nil {
			return OwnershipResult{}, err
		}
		r = append(r, d)
		if d, err = timed(func() error {
			ok, err := s.Query(claim, "b", time.Now(), id, "a").SerialConsistency(anchorSerial).MapScanCASContext(ctx, map[string]any{})
			if err == nil && !ok {
				err = fmt.Errorf("claim of %s not applied", id)
			}
			return err
		}); err != nil {
			return OwnershipResult{}, err
		}
		cl = append(cl, d)
	}
	return OwnershipResult{
		CreateLWTP50: percentile(c, 50), CreateLWTP99: percentile(c, 99),
		PlainInsertP50: percentile(p, 50), PlainInsertP99: percentile(p, 99),
		ClaimP50: percentile(cl, 50), ClaimP99: percentile(cl, 99),
		PlainReadP50: percentile(r, 50), PlainReadP99: percentile(r, 99),
	}, nil
}
