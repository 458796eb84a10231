package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tallyhq/tally/server/store"
)

// productsAdd adds an application product: POST /api/v1/products with a
// store.ApplicationProduct body; it answers with the product as listed.
func (a *api) productsAdd(w http.ResponseWriter, r *http.Request) {
	var req store.ApplicationProduct
	if err := decodeJSON(r, &req); err != nil {
		badBody(w, err)
		return
	}
	added, err := a.cfg.Store.AddProduct(r.Context(), req, actor(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, ok := a.cfg.Catalog.Product(req.Name)
	if !ok {
		a.fail(w, r, fmt.Errorf("product %s was stored but is not in the catalog", req.Name))
		return
	}
	if !added {
		writeJSON(w, http.StatusOK, AddedProduct{Product: ProductOf(p), Unchanged: true})
		return
	}
	writeJSON(w, http.StatusCreated, AddedProduct{Product: ProductOf(p)})
}

// AddedProduct is the answer to adding a product: the product as listed,
// and whether it was there already with the same definition.
type AddedProduct struct {
	Product
	Unchanged bool `json:"unchanged,omitempty"`
}

func (a *api) productsRemove(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.RemoveProduct(r.Context(), r.PathValue("name"), actor(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AddProduct adds an application product.
func (c *Client) AddProduct(ctx context.Context, p store.ApplicationProduct) (AddedProduct, error) {
	var out AddedProduct
	return out, c.Do(ctx, http.MethodPost, "/api/v1/products", p, &out)
}

// RemoveProduct removes an application product that no license names.
func (c *Client) RemoveProduct(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/products/"+url.PathEscape(name), nil, nil)
}
