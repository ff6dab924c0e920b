package invalidator

import "testing"

func TestKeySlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16 check value = %#x, want 0x31c3", got)
	}
	tests := []struct {
		a, b string
		same bool
	}{
		{"{user1000}.following", "{user1000}.followers", true},
		{"foo{}{bar}", "foo{}{zap}", false}, // empty first tag: the whole key is hashed
		{"foo{{bar}}zap", "{bar", true},     // tag is "{bar"
		{"a{b}c", "x{b}y", true},
		{"user:1", "user:2", false},
	}
	for _, tt := range tests {
		if got := keySlot(tt.a) == keySlot(tt.b); got != tt.same {
			t.Errorf("slot(%q)=%d slot(%q)=%d, same=%v want %v", tt.a, keySlot(tt.a), tt.b, keySlot(tt.b), got, tt.same)
		}
	}
	if keySlot("foo{}{bar}") != crc16("foo{}{bar}")%slotCount {
		t.Error("an empty tag must hash the whole key")
	}
}
