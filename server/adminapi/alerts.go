package adminapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/tallyhq/tally/server/admins"
	"github.com/tallyhq/tally/server/store"
)

// alertRoutes mounts the alert routes when the store keeps alerts.
func (a *api) alertRoutes(reg registrar) {
	st, ok := a.cfg.Store.(store.Alerts)
	if !ok {
		return
	}
	reg("GET /api/v1/alerts/webhooks", admins.Viewer, func(w http.ResponseWriter, r *http.Request) {
		hs, err := st.WebhookList(r.Context())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, hs)
	})
	reg("POST /api/v1/alerts/webhooks", admins.Admin, func(w http.ResponseWriter, r *http.Request) {
		var req AddWebhookRequest
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h, err := st.AddWebhook(r.Context(), req.URL, req.Secret, store.ActorOf(r.Context()))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, h)
	})
	reg("DELETE /api/v1/alerts/webhooks/{id}", admins.Admin, func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, "id must be a webhook ID (the number in 'tally-server alerts list')")
			return
		}
		h, err := st.RemoveWebhook(r.Context(), id, store.ActorOf(r.Context()))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
	reg("GET /api/v1/alerts/deliveries", admins.Viewer, func(w http.ResponseWriter, r *http.Request) {
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || n > 10000 {
				writeError(w, http.StatusBadRequest, "limit: a number from 1 to 10000")
				return
			}
			limit = n
		}
		ds, err := st.DeliveryLog(r.Context(), limit)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, ds)
	})
}

// AddWebhookRequest is the body of POST /api/v1/alerts/webhooks.
type AddWebhookRequest struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// AddWebhook adds a receiver of alerts; the answer holds its secret.
func (c *Client) AddWebhook(ctx context.Context, url, secret string) (store.Webhook, error) {
	var out store.Webhook
	return out, c.Do(ctx, http.MethodPost, "/api/v1/alerts/webhooks", AddWebhookRequest{url, secret}, &out)
}

// Webhooks lists the receivers of alerts.
func (c *Client) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	var out []store.Webhook
	return out, c.Do(ctx, http.MethodGet, "/api/v1/alerts/webhooks", nil, &out)
}

// RemoveWebhook stops alerts to a webhook.
func (c *Client) RemoveWebhook(ctx context.Context, id int64) (store.Webhook, error) {
	var out store.Webhook
	return out, c.Do(ctx, http.MethodDelete, "/api/v1/alerts/webhooks/"+strconv.FormatInt(id, 10), nil, &out)
}

// Deliveries lists the alert deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context) ([]store.AlertDelivery, error) {
	var out []store.AlertDelivery
	return out, c.Do(ctx, http.MethodGet, "/api/v1/alerts/deliveries", nil, &out)
}
