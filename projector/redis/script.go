package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// commitScript commits many row changes in one call, each atomically.
// Before it runs, the same pipeline has written every new row image to a
// staging key (DEL stage, HSET stage, PEXPIRE stage): the script then
// RENAMEs the staging key over the row key, which replaces the old hash
// whole, so no reader ever sees a half-written row or stale fields.
//
// For every op, in order, ARGV holds its kind and, for a version-guarded
// op, more values; KEYS holds the row key and the op's side keys:
//
//	kind  more ARGV         KEYS
//	"w"   -                 key, stage        write, unguarded
//	"d"   -                 key               delete, unguarded
//	"W"   ver, vf           key, stage, tomb  write if ver is not older
//	"D"   ver, vf, tttl     key, tomb         delete if ver is not older,
//	                                          leave tomb = ver for tttl ms
//
// ver is the change's decimal version and vf the hash field holding the
// stored one (the staged image already carries vf = ver).
//
// A row key holding something other than a hash is left alone and its op
// number (1-based) reported. The reply is {bad op numbers..., stale},
// stale counting guarded ops skipped because a newer version (or a newer
// delete's tombstone) is stored; their staging keys are dropped. Versions
// are uint64 and Lua numbers are doubles, so versions are compared as
// decimal strings.
const commitScript = `
local function older(a, b)
  if #a ~= #b then return #a < #b end
  if #a <= 15 then return tonumber(a) < tonumber(b) end
  local ha, hb = tonumber(string.sub(a, 1, #a - 10)), tonumber(string.sub(b, 1, #b - 10))
  if ha ~= hb then return ha < hb end
  return tonumber(string.sub(a, -10)) < tonumber(string.sub(b, -10))
end
local stale, bad = 0, {}
local k, a, n = 1, 1, 0
while a <= #ARGV do
  n = n + 1
  local kind = ARGV[a]
  local key = KEYS[k]
  local stage, tomb, ver, vf, tttl = nil, nil, nil, nil, nil
  a, k = a + 1, k + 1
  if kind == 'w' or kind == 'W' then
    stage = KEYS[k]
    k = k + 1
  end
  if kind == 'W' or kind == 'D' then
    tomb, ver, vf = KEYS[k], ARGV[a], ARGV[a + 1]
    k, a = k + 1, a + 2
    if kind == 'D' then
      tttl = ARGV[a]
      a = a + 1
    end
  end
  local ty = redis.call('TYPE', key)['ok']
  local apply, tombSeen = true, false
  if ty ~= 'hash' and ty ~= 'none' then
    bad[#bad + 1] = n
    apply = false
  elseif tomb then
    local cur = false
    if ty == 'hash' then cur = redis.call('HGET', key, vf) end
    if not cur then
      local t = redis.pcall('GET', tomb)
      if type(t) == 'string' then
        cur, tombSeen = t, true
      end
    end
    if cur and string.find(cur, '^%d+$') and older(ver, cur) then
      apply = false
      stale = stale + 1
    end
  end
  if not apply then
    if stage then redis.call('DEL', stage) end
  elseif stage then
    redis.call('RENAME', stage, key)
    if tombSeen then redis.call('DEL', tomb) end
  else
    if ty == 'hash' then redis.call('DEL', key) end
    if tomb then redis.call('SET', tomb, ver, 'PX', tttl) end
  end
end
bad[#bad + 1] = stale
return bad
`

// luaScript is a script as both paths send it: the go-redis path through
// g, the projector's own connections by sha (EVALSHA) and src (SCRIPT
// LOAD after NOSCRIPT).
type luaScript struct {
	src, sha string
	g        *goredis.Script
}

func newLuaScript(src string) *luaScript {
	g := goredis.NewScript(src)
	return &luaScript{src: src, sha: g.Hash(), g: g}
}

var script = newLuaScript(commitScript)

// sideKey names a key kept beside key (its tombstone or staging key).
// Redis Cluster runs a script only if all its keys share a slot: a key with
// a hash tag keeps it (key+suffix), any other key is wrapped as the tag
// ("{key}"+suffix), which hashes to the slot of key itself unless key
// contains a "}". sameSlot tells.
func sideKey(key, suffix string) (side string, sameSlot bool) {
	b, sameSlot := appendSideKey(nil, key, suffix)
	return string(b), sameSlot
}

// appendSideKey appends sideKey's name to b.
func appendSideKey(b []byte, key, suffix string) ([]byte, bool) {
	if hashTag(key) != key {
		return append(append(b, key...), suffix...), true
	}
	return append(append(append(append(b, '{'), key...), '}'), suffix...), !strings.Contains(key, "}")
}

// hashTag returns the part of key Redis Cluster hashes: the text between
// the first "{" and the next "}" if non-empty, else the whole key.
func hashTag(key string) string {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e]
		}
	}
	return key
}

// slot is the Redis Cluster hash slot of key: CRC-16/XMODEM of its hash
// tag, modulo 16384.
func slot(key string) uint16 {
	var crc uint16
	for _, b := range []byte(hashTag(key)) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc & 16383
}
