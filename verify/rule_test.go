package verify

import (
	"strings"
	"testing"

	redisproj "github.com/rowsync/rowsync/projector/redis"
)

func TestRedisTableFor(t *testing.T) {
	spec, err := RedisTableFor("shop", "users", redisproj.TableConfig{Exclude: []string{"pw"}, VersionField: "_v"}, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Key.String() != redisproj.DefaultKey || spec.PK[0] != "id" || spec.Exclude[0] != "pw" || len(spec.Ignore) != 1 || spec.Ignore[0] != "_v" {
		t.Fatalf("spec = %+v", spec)
	}
	if _, err := RedisTableFor("shop", "users", redisproj.TableConfig{Key: "{id"}, nil); err == nil || !strings.HasPrefix(err.Error(), "key: ") {
		t.Fatalf("bad template: %v", err)
	}
}
