package sqlstore

// The post cache keeps, between transactions, what a post reads of its node
// and computer: the node row, the newest sequence number applied for the
// node, and the computer's columns, seats and allocations. A post whose
// node and computer are cached, with a sequence number above the newest
// applied, reads nothing of them, because that read was the writer's
// largest cost a post (docs/PERFORMANCE.md has the measurements).
//
// It is the writer's alone (jobs run on the writer goroutine), and it must
// never say what the database does not, so it is kept conservatively:
//
//   - It changes only after a commit, in the committed jobs' OnCommit
//     hooks, in the order the jobs ran: a job that read the database sets
//     what it read, a later job that changed it drops it.
//   - A job of the post path (a node request, ledgerTx.NodeRequest) is
//     "aware": each of its writes says what it changes by the Tx method it
//     goes through. ExecUncached writes what the cache does not hold
//     (applied records, audit, the post's touch of its computer row, its
//     node's sequence bookkeeping) and changes nothing; ExecComputer of
//     its own computer row drops that computer; Exec, the default, empties
//     the cache (seats, allocations, licenses, other computers, nodes).
//   - Any other job (administration, enrolment, maintenance) that writes
//     anything empties the cache when it commits. A new kind of write is
//     thus safe by default: at worst it costs a re-read.
//   - Inside one transaction, a job whose computer an earlier job of the
//     same transaction touched, or that follows a job that emptied
//     the cache, reads the database (which shows the earlier jobs' writes,
//     the cache not yet).
//
// The seats and allocations maps of a cached computer are shared with the
// engine's decisions, which only read them.
type hotCache struct {
	off       bool
	nodes     map[string]hotNode
	computers map[int64]*hotComputer

	// This transaction's: a job emptied the cache, and the computers its
	// jobs touched (a node's computer is the node's, so this covers the
	// node's entry too).
	poisoned    bool
	txComputers map[int64]struct{}

	hits int // posts answered from the cache (for tests)
}

// hotMax bounds the entries kept (each a few hundred bytes): past it, the
// cache starts again empty.
const hotMax = 1 << 18

type hotNode struct {
	computerID int64
	maxSeq     int64 // nodes.max_seq
	newest     int64 // the newest sequence number applied for the node
}

type hotComputer struct {
	status    string
	plugins   string
	basicHash string
	swGen     int64
	swHash    string
	swCount   int
	seats     map[string]string // nil when empty; read-only
	allocs    map[string]string // nil when empty; read-only
}

type hotEffect uint8

const (
	hotNone         hotEffect = iota // a table the cache does not hold
	hotDropComputer                  // the job's own computer row changed
	hotClear                         // anything else: empty the cache
)

// hotScope is an aware job's view: its node and computer, what it read
// (to be cached once committed) and the strongest effect of its writes.
type hotScope struct {
	node     string
	computer int64
	effect   hotEffect
	read     *hotComputer // what the job read of its computer (nil if a hit)
	seats    bool         // read.seats and read.allocs were loaded
}

func newHotCache(off bool) *hotCache {
	return &hotCache{off: off, nodes: map[string]hotNode{}, computers: map[int64]*hotComputer{},
		txComputers: map[int64]struct{}{}}
}

func (h *hotCache) clear() {
	clear(h.nodes)
	clear(h.computers)
}

// beginTx forgets the previous transaction's jobs.
func (h *hotCache) beginTx() {
	h.poisoned = false
	clear(h.txComputers)
}

// lookup returns the cached state of node for a request numbered seq, if
// the cache may answer: both entries present, untouched by this
// transaction, and seq newer than any applied (so not a repeat).
func (h *hotCache) lookup(node string, seq int64) (hotNode, *hotComputer, bool) {
	if h.off || h.poisoned {
		return hotNode{}, nil, false
	}
	n, ok := h.nodes[node]
	if !ok || seq <= n.newest {
		return hotNode{}, nil, false
	}
	if _, ok := h.txComputers[n.computerID]; ok {
		return hotNode{}, nil, false
	}
	c, ok := h.computers[n.computerID]
	if !ok {
		return hotNode{}, nil, false
	}
	h.hits++
	return n, c, true
}

// jobDone records, when a job has run (before the commit), what the
// transaction's later jobs must not take from the cache.
func (h *hotCache) jobDone(sc *hotScope, wrote bool) {
	switch {
	case sc == nil:
		if wrote {
			h.poisoned = true
		}
	case sc.effect == hotClear:
		h.poisoned = true
	default:
		h.txComputers[sc.computer] = struct{}{}
	}
}

// settle applies a committed aware job: n is the node's state after the
// job (its sequence bookkeeping included).
func (h *hotCache) settle(sc *hotScope, n hotNode) {
	if h.off {
		return
	}
	switch sc.effect {
	case hotClear:
		h.clear()
		return
	case hotDropComputer:
		delete(h.computers, sc.computer)
	default:
		if sc.read != nil {
			if !sc.seats {
				// Never cache a computer without its seats: drop what
				// may be there (it was read again, so it may be stale).
				delete(h.computers, sc.computer)
			} else {
				if len(h.computers) >= hotMax {
					h.clear()
				}
				h.computers[sc.computer] = sc.read
			}
		}
	}
	if len(h.nodes) >= hotMax {
		h.clear()
	}
	h.nodes[sc.node] = n
}

// note records what one of the job's writes changes: its own computer's
// row drops that computer, any other computer's row anything else.
func (sc *hotScope) note(e hotEffect, computer int64) {
	if e == hotDropComputer && computer != sc.computer {
		e = hotClear
	}
	if e > sc.effect {
		sc.effect = e
	}
}
