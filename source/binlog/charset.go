package binlog

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
	"golang.org/x/text/transform"
)

// The binlog holds a text column's bytes in the column's character set;
// every other path (refetch and snapshot over a utf8mb4 connection, the
// JSON formats of canal, Maxwell and Debezium) delivers UTF-8. A value of
// a column whose cdc.Column.Charset is set is turned into UTF-8 here, so
// the same database value gives the same Value on every path.

// charsets maps MySQL's character set names to their decoders.
var charsets = map[string]charset{
	"latin1":   {mysqlLatin1, true},
	"latin2":   {charmap.ISO8859_2, true},
	"latin5":   {charmap.ISO8859_9, true},
	"latin7":   {charmap.ISO8859_13, true},
	"greek":    {charmap.ISO8859_7, true},
	"hebrew":   {charmap.ISO8859_8, true},
	"cp1250":   {charmap.Windows1250, true},
	"cp1251":   {charmap.Windows1251, true},
	"cp1256":   {charmap.Windows1256, true},
	"cp1257":   {charmap.Windows1257, true},
	"cp850":    {charmap.CodePage850, true},
	"cp852":    {charmap.CodePage852, true},
	"cp866":    {charmap.CodePage866, true},
	"koi8r":    {charmap.KOI8R, true},
	"koi8u":    {charmap.KOI8U, true},
	"macroman": {charmap.Macintosh, true},
	"gbk":      {simplifiedchinese.GBK, true},
	"gb2312":   {simplifiedchinese.GBK, true}, // GBK is a superset
	"gb18030":  {simplifiedchinese.GB18030, true},
	"big5":     {traditionalchinese.Big5, true},
	"sjis":     {japanese.ShiftJIS, true},
	"cp932":    {japanese.ShiftJIS, true},
	"ujis":     {japanese.EUCJP, true},
	"eucjpms":  {japanese.EUCJP, true},
	"euckr":    {korean.EUCKR, true},
	"ucs2":     {unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), false},
	"utf16":    {unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), false},
	"utf16le":  {unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), false},
	"utf32":    {utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM), false},
}

type charset struct {
	enc encoding.Encoding
	// ascii: bytes below 0x80 are ASCII (all but UTF-16/32)
	ascii bool
}

// supportedCharset reports whether text of charset cs can be turned into
// UTF-8 (cs as cdc.Column.Charset holds it: lower case, set only for
// charsets that are not UTF-8 already).
func supportedCharset(cs string) bool {
	_, ok := charsets[cs]
	return ok
}

// toUTF8 returns x, text in charset cs, as UTF-8; ASCII text in a
// charset that keeps ASCII is returned as it is. Bytes the charset does
// not define become U+FFFD; a charset without a decoder leaves x as it
// is (the plan warned about the column).
func toUTF8(cs, x string) (string, error) {
	c, ok := charsets[cs]
	if !ok || c.ascii && isASCII(x) {
		return x, nil
	}
	out, err := c.enc.NewDecoder().String(x)
	if err != nil {
		return "", fmt.Errorf("%s text: %w", cs, err)
	}
	return out, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// mysqlLatin1 is MySQL's latin1: Windows-1252, whose 5 unassigned bytes
// (0x81, 0x8D, 0x8F, 0x90, 0x9D) MySQL maps to the C1 controls of the
// same code, where charmap.Windows1252 gives U+FFFD.
var mysqlLatin1 = func() encoding.Encoding {
	var table [256]rune
	for b := range 256 {
		r := charmap.Windows1252.DecodeByte(byte(b))
		if r == utf8.RuneError {
			r = rune(b)
		}
		table[b] = r
	}
	return &runeTable{table}
}()

// runeTable is a single-byte charset given by its table; it only decodes.
type runeTable struct{ t [256]rune }

func (t *runeTable) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: runeTableDecoder{&t.t}}
}

func (*runeTable) NewEncoder() *encoding.Encoder { return encoding.Nop.NewEncoder() }

type runeTableDecoder struct{ t *[256]rune }

func (d runeTableDecoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		r := d.t[src[nSrc]]
		if nDst+utf8.RuneLen(r) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += utf8.EncodeRune(dst[nDst:], r)
		nSrc++
	}
	return nDst, nSrc, nil
}

func (runeTableDecoder) Reset() {}
