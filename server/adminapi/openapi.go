package adminapi

import "net/http"

func (a *api) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{})
}
