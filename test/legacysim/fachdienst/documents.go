package fachdienst

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
)

// Documents are what the legacy system holds besides a Task's record:
// the prescription as the patient receives it (a FHIR document bundle the
// Fachdienst signed), the prescriber's QES-signed data (PKCS#7) and, once
// dispensed, the receipt. A FHIR façade passes them on as they are.
type Documents struct {
	Prescription *Document `json:"prescription,omitempty"`
	QES          *Document `json:"qes,omitempty"`
	Receipt      *Document `json:"receipt,omitempty"`
}

// Document is one stored document: its uuid (derived from the
// PrescriptionID and kind, as production does) and either a FHIR
// resource in JSON or base64 data.
type Document struct {
	UUID   string         `json:"uuid"`
	Bundle map[string]any `json:"bundle,omitempty"`
	Data   string         `json:"data,omitempty"`
}

// Document kinds, the fourth group of their uuid.
const (
	kindQES          = 1
	kindPrescription = 2
	kindReceipt      = 3
)

// documentUUID derives a document's uuid from the PrescriptionID.
func documentUUID(id string, kind int) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%08x-0d00-0000-%04d-000000000000", h.Sum32(), kind)
}

// DocumentsOf returns the documents the legacy system holds for t: none
// for a draft, prescription and QES data once activated, the receipt when
// completed.
func DocumentsOf(t Task) Documents {
	if t.Status == "draft" {
		return Documents{}
	}
	d := Documents{
		Prescription: &Document{UUID: documentUUID(t.ID, kindPrescription), Bundle: prescriptionBundle(t)},
		QES:          &Document{UUID: documentUUID(t.ID, kindQES), Data: base64.StdEncoding.EncodeToString([]byte("simulated PKCS#7 SignedData of the prescription " + t.ID))},
	}
	if t.Status == "completed" {
		d.Receipt = &Document{UUID: documentUUID(t.ID, kindReceipt), Bundle: receiptBundle(t)}
	}
	return d
}

func prescriptionBundle(t Task) map[string]any {
	id := documentUUID(t.ID, kindPrescription)
	const pvs = "https://pvs.fhirgate.example/fhir/"
	return map[string]any{
		"resourceType": "Bundle",
		"id":           id,
		"meta":         map[string]any{"profile": []any{"https://fhir.kbv.de/StructureDefinition/KBV_PR_ERP_Bundle|1.1.0"}},
		"identifier":   map[string]any{"system": "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId", "value": t.ID},
		"type":         "document",
		"timestamp":    t.AuthoredOn,
		"entry": []any{
			map[string]any{"fullUrl": pvs + "Composition/" + id, "resource": map[string]any{
				"resourceType": "Composition", "id": id, "status": "final",
				"type":    map[string]any{"coding": []any{map[string]any{"system": "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_FORMULAR_ART", "code": "e16A"}}},
				"subject": map[string]any{"reference": "Patient/" + id},
				"date":    t.AuthoredOn,
				"author":  []any{map[string]any{"reference": "Practitioner/" + id, "type": "Practitioner"}},
				"title":   "elektronische Arzneimittelverordnung",
			}},
			map[string]any{"fullUrl": pvs + "Patient/" + id, "resource": map[string]any{
				"resourceType": "Patient", "id": id,
				"identifier": []any{map[string]any{"system": "http://fhir.de/sid/gkv/kvid-10", "value": t.KVNR}},
			}},
			map[string]any{"fullUrl": pvs + "Practitioner/" + id, "resource": map[string]any{
				"resourceType": "Practitioner", "id": id,
				"name": []any{map[string]any{"family": "Topp-Glücklich", "given": []any{"Hans"}}},
			}},
		},
		// The Fachdienst's signature over the patient's copy (C.FD.SIG).
		"signature": map[string]any{
			"type":         []any{map[string]any{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.5"}},
			"when":         t.AuthoredOn,
			"who":          map[string]any{"reference": "https://erp.fhirgate.example/Device/1"},
			"sigFormat":    "application/jose",
			"targetFormat": "application/fhir+json",
			"data":         base64.StdEncoding.EncodeToString([]byte("simulated detached JWS of " + t.ID)),
		},
	}
}

func receiptBundle(t Task) map[string]any {
	id := documentUUID(t.ID, kindReceipt)
	return map[string]any{
		"resourceType": "Bundle",
		"id":           id,
		"meta":         map[string]any{"profile": []any{"https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Bundle|1.5"}},
		"identifier":   map[string]any{"system": "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId", "value": t.ID},
		"type":         "document",
		"timestamp":    t.LastModified,
		"entry": []any{
			map[string]any{"fullUrl": "urn:uuid:" + id, "resource": map[string]any{
				"resourceType": "Composition", "id": id, "status": "final",
				"type":   map[string]any{"coding": []any{map[string]any{"system": "https://gematik.de/fhir/erp/CodeSystem/GEM_ERP_CS_DocumentType", "code": "3"}}},
				"date":   t.LastModified,
				"author": []any{map[string]any{"reference": "https://erp.fhirgate.example/Device/1"}},
				"title":  "Quittung",
				"event":  []any{map[string]any{"period": map[string]any{"start": t.AuthoredOn, "end": t.LastModified}}},
			}},
		},
		"signature": map[string]any{
			"type":      []any{map[string]any{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}},
			"when":      t.LastModified,
			"who":       map[string]any{"reference": "https://erp.fhirgate.example/Device/1"},
			"sigFormat": "application/pkcs7-mime",
			"data":      base64.StdEncoding.EncodeToString([]byte("simulated PKCS#7 of the receipt " + t.ID)),
		},
	}
}
