package builtin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/plugins/sdk"
)

func TestRegistry(t *testing.T) {
	specs := builtin.Specs()
	want := map[string]sdk.Kind{"admission": sdk.KindAdmission, "usage": sdk.KindUsage, "partners": sdk.KindPartners}
	if len(specs) != len(want) {
		t.Fatalf("specs = %+v", specs)
	}
	for _, s := range specs {
		if want[s.Name] != s.Kind || s.Version == "" {
			t.Errorf("spec %+v", s)
		}
		if builtin.Registry()[s.Name].Serve == nil {
			t.Errorf("%s has no Serve", s.Name)
		}
	}
}

func TestServeUnknownOrMisconfigured(t *testing.T) {
	tests := []struct {
		name    string
		plugin  string
		wantErr error
	}{
		{"unknown name", "billing", plugins.ErrUnknownPlugin},
		{"admission without its config", "admission", nil},
		{"usage without its config", "usage", nil},
		{"partners without its config", "partners", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.plugin == "admission" {
				t.Setenv("PARLEY_ADMISSION_CONFIG", "")
			}
			if tc.plugin == "partners" {
				t.Setenv("PARLEY_PARTNERS_CONFIG", "")
			}
			if tc.plugin == "usage" {
				t.Setenv("PARLEY_USAGE_CONFIG", "")
			}
			err := builtin.Serve(context.Background(), tc.plugin)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Serve(%q) = %v, want %v", tc.plugin, err, tc.wantErr)
			}
		})
	}
}
