package pipeline

import "testing"

func TestIDFromLocation(t *testing.T) {
	for loc, want := range map[string]string{
		"https://x.example/twiin/Task/n-1":            "n-1",
		"https://x.example/twiin/Task/n-1/_history/3": "n-1",
		"https://x.example/twiin/Patient/p":           "",
		"https://x.example/twiin/Task/":               "",
	} {
		if got := idFromLocation(loc, "Task"); got != want {
			t.Errorf("%s: %q, want %q", loc, got, want)
		}
	}
}
