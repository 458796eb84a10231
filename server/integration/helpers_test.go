package integration

import "github.com/tallyhq/tally/server/adminapi"

func adminapiSecret(name string) adminapi.CreateSecretRequest {
	return adminapi.CreateSecretRequest{Name: name}
}
