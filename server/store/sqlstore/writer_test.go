package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// Jobs batched into one commit: a job that fails after writing rolls back
// alone; the others commit; OnCommit hooks run only for committed jobs.
func TestGroupCommitFailingJobRollsBackAlone(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "w.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	boom := errors.New("boom")
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	hooks := map[int]int{}
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = db.write(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(`INSERT INTO statuses (name) VALUES (?)`, fmt.Sprintf("s%03d", i)); err != nil {
					return err
				}
				tx.OnCommit(func() { mu.Lock(); hooks[i]++; mu.Unlock() })
				if i%7 == 3 {
					return boom // after writing
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		var count int
		if err := db.r.QueryRow(`SELECT COUNT(*) FROM statuses WHERE name = ?`, fmt.Sprintf("s%03d", i)).Scan(&count); err != nil {
			t.Fatal(err)
		}
		failing := i%7 == 3
		switch {
		case failing && (!errors.Is(errs[i], boom) || count != 0 || hooks[i] != 0):
			t.Fatalf("job %d failed: err %v, %d rows, %d hooks; want boom, 0, 0", i, errs[i], count, hooks[i])
		case !failing && (errs[i] != nil || count != 1 || hooks[i] != 1):
			t.Fatalf("job %d: err %v, %d rows, %d hooks; want nil, 1, 1", i, errs[i], count, hooks[i])
		}
	}
}
