package outcome

import "testing"

func BenchmarkRender(b *testing.B) {
	one := Outcome{Issues: New(404, "not-found", "Task not found for prescription id").Issues}
	many := Outcome{Profile: "https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_OperationOutcome"}
	for i := 0; i < 5; i++ {
		is := New(422, "invariant", "Task.status: the value 'draft' is not allowed by the profile").Issues[0]
		is.Expression = []string{"Task.status"}
		many.Issues = append(many.Issues, is)
	}
	for _, c := range []struct {
		name string
		o    Outcome
	}{{"one issue", one}, {"five issues with expressions", many}} {
		b.Run(c.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.o.JSON()
			}
		})
		b.Run(c.name+"/xml", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.o.XML()
			}
		})
	}
}
