package canalpb

import (
	"path/filepath"
	"testing"

	"github.com/rowsync/rowsync/source/decode/internal/golden"
)

// hostileCorpus is the canal-protobuf part of the hostile corpus, built
// with the test encoders; testdata/hostile holds the same bytes (written
// with -update) for the corpus runner in source/decode/all and the fuzz
// seeds. Each case maps to the text its rejection must contain.
func hostileCorpus() map[string]struct {
	msg    []byte
	reason string
} {
	one := func(db, table, file string, cols []col) []byte {
		return rawPacket(1, entry(pbHeader(file, 4711, 1714558830000, db, table, 1), 2,
			pbRowChange(1, false, "", rowData(nil, cols))))
	}
	row := func() []col { return profile("1001", "n", "", true, allUpdated()) }
	scale := row()
	scale[2].mysql = "decimal(10,30000000000)"
	precision := row()
	precision[2].mysql = "decimal(70,2)"
	hugeInt := row()
	hugeInt[0].val = "100000000000000000000000000000000000000000000000000000000000000000000000"
	colName := row()
	colName[1].name = "nick\x00name"
	badUTF8Col := row()
	badUTF8Col[1].name = "nick\xffname"
	good := one("shop", "user_profile", "mysql-bin.000003", row())
	return map[string]struct {
		msg    []byte
		reason string
	}{
		"decimal-scale":       {one("shop", "user_profile", "mysql-bin.000003", scale), "decimal scale 30000000000 exceeds MySQL's maximum of 30"},
		"decimal-precision":   {one("shop", "user_profile", "mysql-bin.000003", precision), "decimal precision 70 exceeds MySQL's maximum of 65"},
		"huge-int":            {one("shop", "user_profile", "mysql-bin.000003", hugeInt), "is not an unsigned integer"},
		"table-control-char":  {one("shop", "user\aprofile", "mysql-bin.000003", row()), "holds a control character"},
		"db-invalid-utf8":     {one("sh\xffop", "user_profile", "mysql-bin.000003", row()), "is not valid UTF-8"},
		"column-nul":          {one("shop", "user_profile", "mysql-bin.000003", colName), "column name"},
		"column-invalid-utf8": {one("shop", "user_profile", "mysql-bin.000003", badUTF8Col), "is not valid UTF-8"},
		"file-control-char":   {one("shop", "user_profile", "mysql-bin\x07.000003", row()), "position"},
		"truncated":           {good[:len(good)/2], "packet"},
		"empty":               {nil, "empty"},
	}
}

func TestHostileCorpusFiles(t *testing.T) {
	for name, c := range hostileCorpus() {
		golden.Check(t, filepath.Join("testdata", "hostile", name+".bin"), c.msg)
		golden.Check(t, filepath.Join("testdata", "hostile", name+".reason"), []byte(c.reason+"\n"))
	}
}
