// Package validation holds the FHIR side of the gateway: checks of FHIR
// content and of domain formats that can be decided without a backend.
// It never imports the gateway.
package validation
