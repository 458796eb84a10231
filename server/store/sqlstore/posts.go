package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/tallyhq/tally/protocol"
	"github.com/tallyhq/tally/server/store"
)

func takeTasks(tx *Tx, computer int64) ([]protocol.Task, error) {
	rows, err := tx.Query(`SELECT id, action FROM tasks WHERE computer_id = ? AND delivered_at IS NULL ORDER BY created_at, id`, computer)
	if err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}
	var out []protocol.Task
	for rows.Next() {
		var t protocol.Task
		if err := rows.Scan(&t.ID, &t.Action); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	rows.Close()
	if _, err := tx.ExecUncached(`UPDATE tasks SET delivered_at = ? WHERE computer_id = ? AND delivered_at IS NULL`, ms(tx.Now), computer); err != nil {
		return nil, fmt.Errorf("deliver tasks: %w", err)
	}
	return out, nil
}

func patchCatalog(tx *Tx, names []string) ([]protocol.MinimumVersion, error) {
	rows, err := tx.Query(`SELECT name, version, source FROM patch_catalog ORDER BY name, source`)
	if err != nil {
		return nil, fmt.Errorf("read patch catalog: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []protocol.MinimumVersion
	for rows.Next() {
		var m protocol.MinimumVersion
		if err := rows.Scan(&m.Name, &m.Version, &m.Source); err != nil {
			return nil, err
		}
		if names == nil || want[m.Name] {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

// taskPlugin is the agent plug-in that asks for and runs tasks.
const taskPlugin = "software-management"

// AddTask implements store.Computers.
func (db *DB) AddTask(ctx context.Context, id int64, action string, force bool) (string, error) {
	if action != protocol.TaskCollectNow && action != protocol.TaskRefreshPlugins {
		return "", fmt.Errorf("%w: task %q: the agent only takes %s and %s", store.ErrInvalid, action, protocol.TaskCollectNow, protocol.TaskRefreshPlugins)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tid := "t-" + hex.EncodeToString(b)
	err := db.write(ctx, func(tx *Tx) error {
		c, hostname, err := loadComputer(tx, id)
		if err != nil {
			return err
		}
		if !force && !slices.ContainsFunc(c.Plugins, func(p protocol.Plugin) bool { return p.Name == taskPlugin }) {
			return fmt.Errorf("%w: computer %d (%s) has no %s plug-in, which is what runs tasks, so the task would wait unread: install the plug-in there ('tally-agent plugin install %s'), or pass --force to queue it anyway",
				store.ErrConflict, id, hostname, taskPlugin, taskPlugin)
		}
		if _, err := tx.ExecUncached(`INSERT INTO tasks (id, computer_id, action, created_at) VALUES (?, ?, ?, ?)`, tid, id, action, ms(tx.Now)); err != nil {
			return fmt.Errorf("queue task: %w", err)
		}
		return addEvent(tx, store.Event{Actor: store.ActorOf(ctx), Kind: store.EventTaskQueued, ComputerID: id, Reason: action + " (" + tid + ")"})
	})
	return tid, err
}
