package store

import (
	"context"
	"time"

	"github.com/tallyhq/tally/server/positions"
	"github.com/tallyhq/tally/server/recognize"
)

// Event kinds of software licenses, applications and purchases. Each
// event's reason holds the object before and after the change, as JSON.
const (
	EventApplicationAdded   = "application.added"
	EventApplicationRemoved = "application.removed"
	EventSWLicenseAdded     = "swlicense.added"
	EventSWLicenseChanged   = "swlicense.changed"
	EventSWLicenseLinked    = "swlicense.linked"
	EventSWAllocated        = "swlicense.allocated"
	EventSWDeallocated      = "swlicense.deallocated"
	EventPurchaseAdded      = "purchase.added"
	EventPurchaseLinked     = "purchase.linked"
	EventPurchaseUnlinked   = "purchase.unlinked"
)

// Application is a piece of software an administrator licenses,
// recognised in the software sets agents post by its rules.
type Application struct {
	ID        int64            `json:"id"`
	Name      string           `json:"name"`
	Publisher string           `json:"publisher,omitempty"`
	Rules     []recognize.Rule `json:"rules"`
	// Installed counts the live computers where it is recognised;
	// Consuming those of them that consume licenses (not retired,
	// disposed or deleted).
	Installed int `json:"installed"`
	Consuming int `json:"consuming"`
	// Computers lists where it is installed (Application only).
	Computers []Installation `json:"computers,omitempty"`
}

// Installation is an application recognised on a computer.
type Installation struct {
	ComputerID int64  `json:"computer_id"`
	Hostname   string `json:"hostname"`
	Status     string `json:"status"`
	// Packages counts the computer's packages the rules recognise.
	Packages  int  `json:"packages"`
	Consuming bool `json:"consuming"`
}

// SoftwareLicense is a license of applications recognised in inventory,
// with its position (consumption is computed live from the store).
type SoftwareLicense struct {
	positions.License
	Applications []string         `json:"applications"`
	Links        []positions.Link `json:"purchases,omitempty"`
	// Allocations are the computers the license is allocated to (by ID),
	// each consuming an entitlement (positions.Reserved).
	Allocations []int64 `json:"allocations"`
}

// SoftwareLicenseChange sets some fields of a software license; nil
// fields stay as they are.
type SoftwareLicenseChange struct {
	Duration          *string          `json:"duration,omitempty"`
	Expiry            *positions.Date  `json:"expiry,omitempty"`
	Extra             *int             `json:"extra_entitlements,omitempty"`
	UnitPrice         *positions.Money `json:"unit_price,omitempty"`
	PlannedNonRenewal *bool            `json:"planned_non_renewal,omitempty"`
	TrueUp            *bool            `json:"subject_to_true_up,omitempty"`
	Status            *string          `json:"status,omitempty"`
	Serial            *string          `json:"serial,omitempty"`
	Manager           *string          `json:"manager,omitempty"`
	CostCentre        *string          `json:"cost_centre,omitempty"`
}

// PurchaseView is a purchase with its links.
type PurchaseView struct {
	positions.Purchase
	Links []positions.Link `json:"links"`
	// Unallocated is the quantity no link takes yet.
	Unallocated int `json:"unallocated"`
}

// NewPurchase is a purchase to add, with the links to make at once.
type NewPurchase struct {
	positions.Purchase
	Links []positions.Link `json:"links,omitempty"`
}

// Applications defines the applications recognised in inventory.
type Applications interface {
	// AddApplications stores applications, all or none, and recognises
	// them on every computer in the same transaction.
	AddApplications(ctx context.Context, apps []Application, actor string) ([]Application, error)
	ApplicationList(ctx context.Context) ([]Application, error)
	// Application returns one, by name, with the computers where it is
	// installed.
	Application(ctx context.Context, name string) (Application, error)
	// RemoveApplication removes an application no software license names.
	RemoveApplication(ctx context.Context, name, actor string) error
}

// SoftwareLicenses manages software licenses, purchases and the reports
// of their positions.
type SoftwareLicenses interface {
	AddSoftwareLicense(ctx context.Context, l SoftwareLicense, actor string) (SoftwareLicense, error)
	ChangeSoftwareLicense(ctx context.Context, ref string, c SoftwareLicenseChange, actor string) (SoftwareLicense, error)
	// LinkApplication adds an application to a software license.
	LinkApplication(ctx context.Context, ref, application, actor string) (SoftwareLicense, error)
	// AllocateSoftware reserves an entitlement of a software license for
	// a computer (not deleted); DeallocateSoftware releases it.
	AllocateSoftware(ctx context.Context, ref string, computer int64, actor string) (SoftwareLicense, error)
	DeallocateSoftware(ctx context.Context, ref string, computer int64, actor string) (SoftwareLicense, error)
	SoftwareLicenseList(ctx context.Context) ([]SoftwareLicense, error)
	// SoftwareLicense returns one by ID (SW-1) or name.
	SoftwareLicense(ctx context.Context, ref string) (SoftwareLicense, error)
	// AddPurchases stores purchases and their links, all or none.
	AddPurchases(ctx context.Context, ps []NewPurchase, actor string) ([]PurchaseView, error)
	PurchaseList(ctx context.Context) ([]PurchaseView, error)
	Purchase(ctx context.Context, id int64) (PurchaseView, error)
	// LinkPurchase gives quantity of a purchase to a license (a software
	// license or one of Tally's product licenses), replacing the link's
	// quantity if there is one; the links never take more than bought.
	LinkPurchase(ctx context.Context, purchase int64, license string, quantity int, actor string) (PurchaseView, error)
	UnlinkPurchase(ctx context.Context, purchase int64, license, actor string) (PurchaseView, error)
	// PositionSnapshot reads every license (software and product), every
	// purchase and link, with live consumption, for the reports.
	PositionSnapshot(ctx context.Context) (positions.Snapshot, error)
}

// EventWebhookAdded is a webhook added for alerts.
const EventWebhookAdded = "alerts.webhook-added"

// EventWebhookRemoved is a webhook removed.
const EventWebhookRemoved = "alerts.webhook-removed"

// Webhook is a receiver of alerts.
type Webhook struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret,omitempty"` // only when added
	CreatedAt time.Time `json:"created_at"`
}

// AlertCondition is a condition alerted once while it lasts.
type AlertCondition struct {
	Key     string    `json:"key"`
	Kind    string    `json:"kind"`
	License string    `json:"license"`
	Product string    `json:"product,omitempty"`
	Message string    `json:"message"`
	Action  string    `json:"action"`
	At      time.Time `json:"at"`
}

// AlertDelivery is one alert to one webhook, and how its delivery went.
type AlertDelivery struct {
	ID          int64      `json:"id"`
	Webhook     int64      `json:"webhook"`
	URL         string     `json:"url"`
	Secret      string     `json:"-"`
	Key         string     `json:"condition"`
	Body        []byte     `json:"-"`
	State       string     `json:"state"` // pending, delivered, failed
	Attempts    int        `json:"attempts"`
	LastStatus  int        `json:"last_status,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastAt      *time.Time `json:"last_attempt_at,omitempty"`
	NextAt      *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// AlertAttempt is the outcome of one delivery attempt.
type AlertAttempt struct {
	At        time.Time
	Delivered bool
	GiveUp    bool
	Status    int
	Error     string
	Next      time.Time
}

// Alerts keeps webhooks, the conditions raised and their deliveries.
type Alerts interface {
	AddWebhook(ctx context.Context, url, secret, actor string) (Webhook, error)
	WebhookList(ctx context.Context) ([]Webhook, error)
	// RemoveWebhook stops alerts to a webhook: its pending deliveries
	// are given up, its delivery log stays.
	RemoveWebhook(ctx context.Context, id int64, actor string) (Webhook, error)
	RaiseAlerts(ctx context.Context, conds []AlertCondition) ([]AlertCondition, error)
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]AlertDelivery, error)
	RecordAttempt(ctx context.Context, id int64, a AlertAttempt) error
	// DeliveryLog lists the newest deliveries first.
	DeliveryLog(ctx context.Context, limit int) ([]AlertDelivery, error)
	// AlertFacts reads what the conditions need beyond the positions:
	// the products whose data was discarded since the time given, and
	// the drift the latest maintenance run found.
	AlertFacts(ctx context.Context, discardsSince time.Time) (AlertFacts, error)
}

// AlertFacts are the facts, beyond the license positions, that alerts
// are raised on.
type AlertFacts struct {
	Discards []ProductDiscards `json:"discards"`
	// Drift is the drift found by the latest maintenance run that found
	// any, nil once a later run found none.
	Drift *DriftFound `json:"drift,omitempty"`
}

// ProductDiscards are one product's discarded data within a period.
type ProductDiscards struct {
	Product string `json:"product"`
	// Computers counts the computers whose data was discarded.
	Computers int `json:"computers"`
	// Reasons are the verdicts (discarded:no-seat, …), sorted.
	Reasons []string `json:"reasons"`
}

// DriftFound is what one maintenance run found drifted.
type DriftFound struct {
	Event int64     `json:"event"` // the audit event recording it
	At    time.Time `json:"at"`
	Drift string    `json:"drift"`
}
