package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/tallyhq/tally/common/clock"
	"github.com/tallyhq/tally/server/datadir"
	"github.com/tallyhq/tally/server/engine"
	"github.com/tallyhq/tally/server/license"
	"github.com/tallyhq/tally/server/store/sqlstore"
)

// CheckDatabase checks the data folder's database without changing it or
// taking the folder's lock: PRAGMA integrity_check, then the seat
// invariants and every license against its signed file. It may run while
// the server serves (it reads the last commit).
func CheckDatabase(ctx context.Context, dataDir string) (sqlstore.CheckReport, error) {
	d := datadir.Dir{Path: dataDir}
	file := d.File(datadir.DatabaseFile)
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return sqlstore.CheckReport{}, fmt.Errorf("no database in %s (no %s): pass the server's --data folder", dataDir, datadir.DatabaseFile)
		}
		return sqlstore.CheckReport{}, err
	}
	cat, err := LoadCatalog(d)
	if err != nil {
		return sqlstore.CheckReport{}, err
	}
	verify := func(file []byte) (license.Payload, error) {
		trusted, err := TrustedIssuers(d)
		if err != nil {
			return license.Payload{}, err
		}
		f, err := license.Parse(file, trusted)
		if err != nil {
			return license.Payload{}, err
		}
		return f.Payload, nil
	}
	return sqlstore.CheckFile(ctx, file, sqlstore.Options{Engine: engine.New(cat), Clock: clock.System{}, VerifyLicense: verify})
}
