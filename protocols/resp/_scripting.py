# Lua scripting as Redis 7 does it (EVAL, EVALSHA, SCRIPT ...) and its
# functions (FUNCTION LOAD, FCALL ...): a Lua 5.1 interpreter (lupa) for
# scripts and another for functions, as Redis has, each sandboxed as Redis
# sandboxes it, with Redis's conversions between Lua values and replies both
# ways. The function libraries themselves are _functions.py's.
#
# Threads. Lua runs in one long-lived worker thread (LuaEngine), never on
# the trio thread, so a script that runs long (or forever) does not stop the
# event loop: other clients still get BUSY, and SCRIPT KILL still gets in.
# Every redis.call is handed back to the trio thread and run there through
# _dispatch.script_call, so the keyspace is only ever touched by the loop
# thread. While a script runs (Scripting.running), dispatch() holds every
# other client's command until it ends; past busy-reply-threshold those
# commands get BUSY unless flagged allow_busy; the expiry sweeper pauses.
#
# The common case is a short script (redis-py Lock's release: GET, DEL). For
# it the trio thread does not go back to the loop at all: it waits for the
# worker's next message on a plain queue (the GIL released) and answers each
# redis.call at once, for up to SLICE seconds. Only a script that outlasts
# that makes the caller's task await a trio event the worker sets through
# the trio token, letting the loop run; a script that makes many calls over
# a long time is served in SLICE-long bursts, with a checkpoint between.
#
# Functions run the same way (Scripting.fcall), killed by FUNCTION KILL, with
# BUSY's text naming it. A library's code runs in the worker too when it is
# loaded (FUNCTION LOAD, RESTORE), for at most LOAD_TIMEOUT, with only the
# load-time API Redis gives it; other clients wait for it, never get BUSY.
from __future__ import annotations

import hashlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lupa.lua51 as lupa
import trio
import trio.lowlevel

from . import _lua_libs
from ._client import Client
from ._functions import (
    ENGINE,
    FUNCTION_FLAGS,
    NAME_ERROR,
    Function,
    Libraries,
    Library,
    parse_metadata,
    valid_name,
)
from ._lua_libs import ScriptRaise
from ._reply import ErrorReply, NullArray, Reply, Status, _format_double, map_pairs
from ._replytypes import Score, format_score

if TYPE_CHECKING:
    from ._app import CommandSpec
    from ._server import RedisServer

__all__ = ["LuaEngine", "ScriptRun", "Scripting", "sha1hex"]

log = logging.getLogger("netsvc.resp")

SLICE = 0.002  # seconds the trio thread serves a script without yielding to the loop
HOOK_INSTRUCTIONS = 10_000  # Lua instructions between SCRIPT KILL and memory checks

NOSCRIPT = ErrorReply("NOSCRIPT No matching script. Please use EVAL.")
BUSY = ErrorReply(
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
)
NOTBUSY = ErrorReply("NOTBUSY No scripts in execution right now.")
UNKILLABLE = ErrorReply(
    "UNKILLABLE Sorry the script already executed write commands against the dataset. "
    "You can either wait the script termination or kill the server in a hard way using "
    "the SHUTDOWN NOSAVE command."
)
BUSY_FUNCTION = ErrorReply(
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)
KILLED_MESSAGE = "ERR Script killed by user with SCRIPT KILL..."
LOAD_TIMEOUT = 0.5  # seconds a library's code may run at FUNCTION LOAD (Redis's 500 ms)
LOAD_HOOK_INSTRUCTIONS = 100_000  # Lua instructions between FUNCTION LOAD's time checks

# What a ScriptRun runs
EVAL = "eval"
FUNCTION = "function"
LOAD = "load"

_LLONG_MIN = -(2**63)
_DONE = "done"
_CALL = "call"


def sha1hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _lua_number_text(value: float) -> bytes:
    """A number as Lua's tostring writes it (%.14g)."""
    if isinstance(value, int):
        value = float(value)
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"nan" if math.copysign(1, value) > 0 else b"-nan"
    return b"%.14g" % value


def _to_long_long(value: float) -> int:
    """C's (long long) cast of a double, as x86-64 does it: out of range is LLONG_MIN."""
    if isinstance(value, int):
        return value if _LLONG_MIN <= value < 2**63 else _LLONG_MIN
    if not math.isfinite(value) or not _LLONG_MIN <= value < 2**63:
        return _LLONG_MIN
    return int(value)


# --- the sandbox ---------------------------------------------------------------
# Run once per interpreter with a table of Python callbacks; builds Redis's
# globals (a read-only view whose misses raise Redis's error) and returns the
# functions the engine needs. Internal functions keep their upvalues out of
# the scripts' reach: `debug` is gone, and their environment is the view.
_PRELUDE = r"""
local py = ...
local G = _G
local rawget, rawset, rawequal = rawget, rawset, rawequal
local type, tostring, error, select = type, tostring, error, select
local setmetatable, getmetatable, next = setmetatable, getmetatable, next
local unpack, xpcall, pcall = unpack, xpcall, pcall
local loadstring, setfenv, tonumber = loadstring, setfenv, tonumber
local getinfo, sethook = debug.getinfo, debug.sethook
local sbyte, sfind, ssub = string.byte, string.find, string.sub
local concat = table.concat
local newproxy = newproxy
local getfenv = getfenv
local check_kill, unwrap = py.check_kill, py.unwrap

-- What Redis does not load, or removes (7.0: debug, print, newproxy, module...)
for _, name in ipairs({'io', 'os', 'package', 'module', 'require', 'dofile', 'loadfile',
                       'print', 'python', 'debug', 'newproxy'}) do
  G[name] = nil
end

local readonly = setmetatable({}, {__mode = 'k'})
local internal = {}  -- functions of ours: the error handler looks past them
local function ro_error() error('Attempt to modify a readonly table', 2) end
local META = {}
readonly[META] = true
setmetatable(META, {__newindex = ro_error, __metatable = META})

local function view(t)
  local v = {}
  readonly[v] = true
  return setmetatable(v, {__index = t, __newindex = ro_error, __metatable = META})
end

-- the error objects Redis uses: {err='CODE message'}
local function err_table(msg) return {err = msg} end

-- Redis's __redis__err__handler: the error as a table, with where it happened
-- (the first frame that is neither C nor ours: the user's script)
local OURS = '=netsvc'
local function handler(err)
  local level = 2
  local info = getinfo(level, 'nSl')
  while info and (info.what == 'C' or info.source == OURS) do
    level = level + 1
    info = getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then err = unwrap(err) end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if info then
    rawset(err, 'source', info.source)
    rawset(err, 'line', info.currentline)
  end
  return err
end

-- luaL_where(L, 1) for a Python function a script called: where it was called
local function where()
  local info = getinfo(3, 'Sl')
  if info and info.currentline > 0 then return info.short_src .. ':' .. info.currentline .. ': ' end
  return ''
end

-- redis.*: the functions that can raise are Python's (C functions to Lua,
-- so `return redis.call(...)`, a tail call, keeps the script's frame)
local redis = {}
redis.call = py.call
redis.pcall = py.pcall
redis.sha1hex = py.sha1hex
redis.setresp = py.setresp
redis.set_repl = py.set_repl
redis.log = py.log
local function error_table(code_msg)
  -- luaPushErrorBuff: "-CODE message" -> "CODE message"; no code -> ERR
  local code, msg
  local space = sfind(code_msg, ' ', 1, true)
  if space then
    code, msg = ssub(code_msg, 2, space - 1), ssub(code_msg, space + 1)
  else
    code, msg = 'ERR', ssub(code_msg, 2)
  end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then
    return err_table('ERR wrong number or type of arguments')
  end
  if sbyte(e, 1) ~= 45 then e = '-' .. e end
  return error_table(e)
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return err_table('ERR wrong number or type of arguments')
  end
  return {ok = s}
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_ALL = 0, 1, 3
redis.REPL_SLAVE, redis.REPL_REPLICA = 2, 2
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num
redis.acl_check_cmd = py.acl_check_cmd

-- Redis's math.random: its own lrand48, the same sequence on every platform
local math = G.math
local NUMBER_EXPECTED = "bad argument #%d to '%s' (number expected, got %s)"
math.random = function(...)
  local r = py.random()
  local n = select('#', ...)
  if n == 0 then return r end
  local l, u = ...
  if n == 1 then
    u = tonumber(l)
    if u == nil then error(NUMBER_EXPECTED:format(1, 'random', type(l))) end
    u = u - u % 1
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)") end
    return math.floor(r * u) + 1
  elseif n == 2 then
    l, u = tonumber(l), tonumber(u)
    if l == nil then error(NUMBER_EXPECTED:format(1, 'random', type((...)))) end
    if u == nil then error(NUMBER_EXPECTED:format(2, 'random', type(select(2, ...)))) end
    l, u = l - l % 1, u - u % 1
    if l > u then error("bad argument #2 to 'random' (interval is empty)") end
    return math.floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments')
end
math.randomseed = function(seed)
  local s = tonumber(seed)
  if s == nil then error(NUMBER_EXPECTED:format(1, 'randomseed', type(seed))) end
  py.randomseed(s - s % 1)
end

-- Redis's pcall: an error table becomes its message (Redis 7 compatibility)
local redis_pcall
redis_pcall = function(f, ...)
  local function pack(...) return select('#', ...), {...} end
  local n, res = pack(pcall(f, ...))
  if not res[1] then
    local e = res[2]
    if type(e) == 'userdata' then e = unwrap(e) end
    if type(e) == 'table' then
      local m = rawget(e, 'err')
      if type(m) == 'string' or type(m) == 'number' then return false, m end
    end
    return false, e
  end
  return unpack(res, 1, n)
end

local function no_bytecode(s)
  return type(s) == 'string' and sbyte(s, 1) == 27
end
local function sandbox_loadstring(s, name)
  if no_bytecode(s) then return nil, 'bytecode is not supported' end
  -- a script's chunk may not pass for ours: the kill hook skips our frames
  if type(name) == 'string' and sfind(name, OURS, 1, true) == 1 then name = '=(load)' end
  return loadstring(s, name)
end
local function sandbox_load(f, name)
  if type(f) ~= 'function' then return sandbox_loadstring(f, name) end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  return sandbox_loadstring(concat(parts), name or '=(load)')
end
local function sandbox_rawset(t, k, v)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
local function sandbox_setmetatable(t, mt)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end

G.pcall = redis_pcall
G.rawset = sandbox_rawset
G.setmetatable = sandbox_setmetatable
G.redis = redis

local libs = py.libs(where, newproxy())
G.cjson, G.cmsgpack, G.bit, G.struct = libs.cjson, libs.cmsgpack, libs.bit, libs.struct

-- table.insert/remove/sort write raw: not into the read-only tables
for _, name in ipairs({'insert', 'remove', 'sort'}) do
  local raw = table[name]
  table[name] = function(t, ...)
    if readonly[t] then error('Attempt to modify a readonly table', 2) end
    return raw(t, ...)
  end
end

-- The libraries: read-only views (Redis 7 protects them)
for _, name in ipairs({'string', 'math', 'table', 'coroutine', 'redis',
                       'cjson', 'cmsgpack', 'bit', 'struct'}) do
  G[name] = view(G[name])
end
-- the string metatable stays the real one, guarded
local string_mt = getmetatable('')
string_mt.__metatable = META
-- so does the one lupa gives Python objects (redis.call, the libraries'
-- functions): a script that could change its __call would see, and could
-- rewrite, every later script's commands, or outlive SCRIPT KILL
getmetatable(py.check_kill).__metatable = META

-- the globals: a read-only view; a miss is Redis's error. The interpreter's
-- own globals stay G (lupa looks `debug` up there, unprotected): scripts and
-- what they load get P as their environment instead.
local P = {}
readonly[P] = true
setmetatable(P, {
  __index = function(t, k)
    local v = rawget(G, k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = ro_error,
  __metatable = META,
})
G._G = P

local function with_env(f, ...)
  if type(f) == 'function' then setfenv(f, P) end
  return f, ...
end
G.loadstring = function(s, name) return with_env(sandbox_loadstring(s, name)) end
G.load = function(f, name) return with_env(sandbox_load(f, name)) end
-- Redis 7.0 leaves neither getfenv nor setfenv to scripts
G.getfenv, G.setfenv = nil, nil
G.__redis__err__handler = handler

-- every HOOK_INSTRUCTIONS instructions: SCRIPT KILL, and lua-memory-limit
-- (checked here, below the interpreter's hard cap, so that an error can still
-- be raised and handled; past it, every line raises, as after SCRIPT KILL)
local gc = collectgarbage
local memory_limit = 0  -- KiB, 0: none (set by run)
local KILLED = 'ERR Script killed by user with SCRIPT KILL...'
local OOM = 'ERR Script used more memory than lua-memory-limit allows: not enough memory'
local function hook()
  local info = getinfo(2, 'S')
  if info and info.source == OURS then return end  -- our frames: after the script
  local why
  if check_kill() then
    why = KILLED
  elseif memory_limit > 0 and gc('count') > memory_limit then
    gc('collect')
    if gc('count') > memory_limit then why = OOM end
  end
  if why then
    sethook(hook, 'l')  -- on every line from now on: pcall cannot swallow it
    error({err = why})
  end
end

local function compile(body)
  if no_bytecode(body) then return nil, 'user_script: bytecode is not supported' end
  local f, e = loadstring(body, '@user_script')
  if f then setfenv(f, P) end
  return f, e
end

local function run(f, keys, args, limit)
  memory_limit = limit
  setfenv(0, G)
  rawset(G, 'KEYS', keys)
  rawset(G, 'ARGV', args)
  sethook(hook, '', py.hook_count)
  local ok, res = xpcall(f, handler)
  sethook()
  return ok, res
end

-- Functions (FUNCTION LOAD, FCALL). A library's code, and every function it
-- defines, has F as its environment: while the library loads, F shows only
-- what Redis 7 gives a library's code (redis.register_function, redis.log,
-- the log levels and the version; a miss is Redis's error, in `redis` too);
-- at any other time, the globals EVAL's scripts see. KEYS and ARGV are never
-- set in this interpreter: a function gets its keys and arguments as its own.
local loading = false
local function missing(k)
  return "Script attempted to access nonexistent global variable '" .. tostring(k) .. "'"
end
local load_redis = {
  register_function = py.register_function, log = py.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
}
local load_redis_view = {}
readonly[load_redis_view] = true
local function load_redis_index(_, k)
  local v = rawget(load_redis, k)
  if v == nil then error(missing(k), 2) end
  return v
end
setmetatable(load_redis_view,
             {__index = load_redis_index, __newindex = ro_error, __metatable = META})
local LOAD_GLOBALS = {redis = load_redis_view}
local F = {}
readonly[F] = true
local function function_index(_, k)
  local v
  if loading then v = rawget(LOAD_GLOBALS, k) else v = rawget(G, k) end
  if v == nil then error(missing(k), 2) end
  return v
end
setmetatable(F, {__index = function_index, __newindex = ro_error, __metatable = META})

-- FUNCTION LOAD's run is stopped past its time (Redis's 500 ms) or memory
local load_timed_out = py.load_timed_out
local function load_hook()
  local info = getinfo(2, 'S')
  if info and info.source == OURS then return end
  local why
  if load_timed_out() then
    why = 'ERR FUNCTION LOAD timeout'
  elseif memory_limit > 0 and gc('count') > memory_limit then
    gc('collect')
    if gc('count') > memory_limit then why = OOM end
  end
  if why then
    sethook(load_hook, 'l')
    error({err = why})
  end
end

local function compile_library(body)
  if no_bytecode(body) then return nil, 'user_function: bytecode is not supported' end
  local f, e = loadstring(body, '@user_function')
  if f then setfenv(f, F) end
  return f, e
end

-- as Redis runs it: no error handler (no line in the error), no pcall for the code
local function load_library(chunk, limit)
  memory_limit = limit
  loading = true
  sethook(load_hook, '', py.load_hook_count)
  local ok, err = pcall(chunk)
  sethook()
  loading = false
  if not ok and type(err) == 'userdata' then err = unwrap(err) end
  return ok, err
end

-- after a load that Lua itself could not finish (no memory for pcall): the
-- interpreter must not stay in load mode, where functions see only the load API
local function end_loading()
  sethook()
  loading = false
end

local function call_function(f, keys, args, limit)
  memory_limit = limit
  setfenv(0, G)
  sethook(hook, '', py.hook_count)
  local ok, res = xpcall(function() return f(keys, args) end, handler)
  sethook()
  return ok, res
end

local function classify(t)
  local v = rawget(t, 'err')
  if type(v) == 'string' then return 'err', v end
  v = rawget(t, 'ok')
  if type(v) == 'string' then return 'ok', v end
  v = rawget(t, 'double')
  if type(v) == 'number' then return 'double', v end
  v = rawget(t, 'big_number')
  if type(v) == 'string' then return 'big_number', v end
  v = rawget(t, 'verbatim_string')
  if type(v) == 'table' then
    local f, s = rawget(v, 'format'), rawget(v, 'string')
    if type(f) == 'string' and type(s) == 'string' then return 'verbatim', s end
  end
  v = rawget(t, 'map')
  if type(v) == 'table' then
    local out, n = {}, 0
    for k, x in next, v do out[n + 1] = k; out[n + 2] = x; n = n + 2 end
    return 'map', out, n
  end
  v = rawget(t, 'set')
  if type(v) == 'table' then
    local out, n = {}, 0
    for k in next, v do n = n + 1; out[n] = k end
    return 'set', out, n
  end
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  return 'array', t, n
end

local function error_info(e)
  if type(e) ~= 'table' then return tostring(e) end
  local m, s, l = rawget(e, 'err'), rawget(e, 'source'), rawget(e, 'line')
  if type(m) == 'number' then m = tostring(m) end
  if type(l) == 'number' then l = tostring(l) end
  if type(s) ~= 'string' then s = nil end
  if type(l) ~= 'string' then l = nil end
  if type(m) ~= 'string' then m = nil end
  return m, s, l, true
end

-- everything a script can reach gets the view as its environment
for _, f in ipairs({redis_pcall, sandbox_loadstring, sandbox_load, sandbox_rawset,
                    sandbox_setmetatable, ro_error, handler, hook, G.loadstring, G.load,
                    load_redis_index, function_index, load_hook}) do
  setfenv(f, P)
end
for _, f in next, redis do if type(f) == 'function' then setfenv(f, P) end end
setfenv(math.random, P)
setfenv(math.randomseed, P)
return compile, run, classify, error_info, where, compile_library, load_library, call_function,
  end_loading
"""


class ScriptRun:
    """One script being run: its caller, what it may do, what it did. Its
    kind: an EVAL script (EVAL), a function (FCALL), or a library's code
    while FUNCTION LOAD or RESTORE loads it (LOAD: never BUSY, as Redis
    serves no one during a load)."""

    __slots__ = (
        "args",
        "busy",
        "caller",
        "command",
        "done",
        "function",
        "keys",
        "killed",
        "kind",
        "name",
        "read_only",
        "resp",
        "started",
        "stopping",
        "wrote",
    )

    def __init__(
        self,
        caller: Client,
        name: str,
        function: Any,
        keys: list[bytes],
        args: list[bytes],
        read_only: bool,
        kind: str = EVAL,
        command: list[bytes] | None = None,
    ) -> None:
        self.caller = caller
        self.kind = kind
        self.command = command or []  # the caller's command (FUNCTION STATS shows it)
        self.name = name  # the sha or the function's name, as Redis's errors name them
        self.function = function
        self.keys = keys
        self.args = args
        self.read_only = read_only
        self.resp = 2  # redis.setresp
        self.wrote = False  # a write command ran: SCRIPT KILL refuses
        self.killed = False  # SCRIPT KILL asked; the hook raises
        self.stopping = False  # killed because the server stops, wrote or not
        self.started = time.monotonic()
        self.done = trio.Event()
        self.busy = False  # past busy-reply-threshold


def _command_argv(args: tuple[Any, ...]) -> list[bytes] | None:
    """redis.call's arguments as a command: strings, and numbers as Redis
    formats them (%.17g); None if another kind is among them."""
    argv: list[bytes] = []
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            argv.append(arg)
        elif kind is int or kind is float:
            argv.append(b"%.17g" % arg)
        else:
            return None
    return argv


class LuaEngine:
    """One sandboxed Lua interpreter and the worker thread that runs it."""

    def __init__(
        self,
        memory_limit: int,
        version: bytes,
        known: Callable[[bytes], bool] = bool,
        rand: _Rand48 | None = None,
        permitted: Callable[[Client, list[bytes]], bool | None] | None = None,
    ) -> None:
        self.memory_limit = memory_limit
        self._known = known
        # redis.acl_check_cmd: may the script's caller run this? None: no such command
        self._permitted = permitted
        self.lua = lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_no_attributes,
            max_memory=memory_limit + max(memory_limit // 4, 4 * 1024 * 1024) or None,
        )
        self.run_lock = threading.Lock()
        self.current: ScriptRun | None = None
        self.loading: _Loading | None = None  # a library's code being run (FUNCTION LOAD)
        self._rand = rand or _Rand48()
        self.jobs: queue.SimpleQueue[Callable[[], Reply] | None] = queue.SimpleQueue()
        self.requests: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.replies: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self._wake_lock = threading.Lock()
        self._waiting = False  # the trio side awaits `_event` for the next message
        self._event = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        table = self.lua.table_from
        major, minor, patch = (int(part) for part in version.split(b".")[:3])
        callbacks = {
            b"call": self._call,
            b"pcall": self._pcall,
            b"sha1hex": self._sha1hex,
            b"setresp": self._setresp,
            b"set_repl": self._set_repl,
            b"log": self._log,
            b"unwrap": self._unwrap,
            b"libs": lambda where, null: table(_lua_libs.install(self.lua, where, null)),
            b"check_kill": self._check_kill,
            b"acl_check_cmd": self._acl_check_cmd,
            b"random": self._rand.random,
            b"randomseed": self._rand.seed,
            b"version": version,
            b"version_num": (major << 16) | (minor << 8) | patch,
            b"hook_count": HOOK_INSTRUCTIONS,
            b"register_function": self._register_function,
            b"load_timed_out": self._load_timed_out,
            b"load_hook_count": LOAD_HOOK_INSTRUCTIONS,
        }
        # the chunk's name ("=netsvc") makes its frames "ours" for the error handler
        prelude = self.lua.eval(
            "function(src, py) return assert(loadstring(src, '=netsvc'))(py) end"
        )(_PRELUDE.encode(), table(callbacks))
        self._compile, self._run, self._classify, self._error_info = prelude[:4]
        self._compile_library, self._load_library, self._call_function = prelude[5:8]
        self._end_loading = prelude[8]
        # Lua's -0 reaches Python as 0: ask Lua (Redis replies {double=-0.0} as -0)
        self._negative_zero_double = self.lua.eval("function(t) return 1 / t.double < 0 end")
        self.table_from = table
        self._thread = threading.Thread(target=self._main, name="resp-lua", daemon=True)
        self._thread.start()

    # -- the trio side ---------------------------------------------------------

    def compile(self, body: bytes) -> Any:
        """The script's function, or an ErrorReply. Only while no script runs."""
        function, error = self._compile(body)
        if function is None:
            message = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            return ErrorReply(f"ERR Error compiling script (new function): {message}")
        return function

    def compile_library(self, body: bytes) -> Any:
        """A library's code (its metadata line emptied) as a function, or an
        ErrorReply. Only while no script runs."""
        function, error = self._compile_library(body)
        if function is None:
            message = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            return ErrorReply(f"ERR Error compiling function: {message}")
        return function

    def close(self) -> None:
        self.jobs.put(None)

    def memory_used(self) -> int:
        """The interpreter's memory in bytes (0 if lua-memory-limit is 0: not tracked)."""
        return int(self.lua.get_memory_used() or 0)

    def submit(self, job: Callable[[], Reply]) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.jobs.put(job)

    async def wait_posted(self) -> None:
        """Let the loop run until the worker posts its next message."""
        with self._wake_lock:
            self._event = event = trio.Event()
            self._waiting = True
        if not self.requests.empty():
            with self._wake_lock:
                self._waiting = False
            await trio.lowlevel.checkpoint()
            return
        await event.wait()

    # -- the worker side -------------------------------------------------------

    def _main(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                result = job()
            except BaseException:  # the worker must answer, whatever happened
                log.exception("Lua script failed")
                result = ErrorReply("ERR internal error running the script; see the server log")
            self._post((_DONE, result))

    def _post(self, message: tuple[str, Any]) -> None:
        self.requests.put(message)
        if self._waiting:
            with self._wake_lock:
                if self._waiting:
                    self._waiting = False
                    assert self._token is not None
                    self._token.run_sync_soon(self._event.set)

    def execute(self, run: ScriptRun) -> Reply:
        """Run a script (in the worker thread); its reply."""
        lua = self.lua
        limit = self.memory_limit
        # the interpreter's hard cap leaves room above the limit the hook enforces
        hard_cap = limit + max(limit // 4, 4 * 1024 * 1024) if limit else 0
        if lua.get_max_memory() != hard_cap:
            lua.set_max_memory(hard_cap)
        self.current = run
        try:
            table = self.table_from
            call = self._call_function if run.kind == FUNCTION else self._run
            ok, result = call(run.function, table(run.keys), table(run.args), limit // 1024)
            if ok:
                return self.to_reply(result, run.resp)
            return self._error_reply(result, run.name)
        except lupa.LuaMemoryError:
            lua.gccollect()
            return ErrorReply(f"ERR Error running script {run.name}, not enough memory ")
        except lupa.LuaError as exc:
            return ErrorReply(f"ERR Error running script {run.name}, {str(exc)[:100]} ")
        finally:
            self.current = None
            if run.stopping:
                log.warning("Lua script %s killed: the server is shutting down", run.name)
            elif run.killed:
                log.warning("Lua script killed by user with SCRIPT KILL.")

    def load_library(self, run: ScriptRun, timeout: float) -> dict[bytes, Function] | ErrorReply:
        """Run a library's code (in the worker thread) as FUNCTION LOAD does:
        the functions it registers, or Redis's error."""
        limit = self.memory_limit
        hard_cap = limit + max(limit // 4, 4 * 1024 * 1024) if limit else 0
        if self.lua.get_max_memory() != hard_cap:
            self.lua.set_max_memory(hard_cap)
        loading = self.loading = _Loading(time.monotonic() + timeout)
        try:
            ok, error = self._load_library(run.function, limit // 1024)
        except lupa.LuaError as exc:  # not enough memory for pcall itself
            self.lua.gccollect()
            self._end_loading()
            ok, error = False, str(exc).encode()
        finally:
            self.loading = None
        if ok:
            return loading.functions
        message, _, _, is_table = self._error_fields(error)
        text = _text(message) if is_table else f"ERR {_text(message)}"  # ERR for a Lua error
        return ErrorReply(f"ERR Error registering functions: {text}")

    def _register_function(self, *args: Any) -> None:
        """redis.register_function(name, callback) or ({function_name=, callback=,
        flags=, description=}), with Redis's checks and errors."""
        loading = self.loading
        if loading is None:
            raise ScriptRaise(
                self._err("ERR redis.register_function can only be called on FUNCTION LOAD command")
            )
        if len(args) == 2:
            name = _lua_string(args[0])
            if name is None:
                raise ScriptRaise(
                    self._err("ERR first argument to redis.register_function must be a string")
                )
            if lupa.lua_type(args[1]) != "function":
                raise ScriptRaise(
                    self._err("ERR second argument to redis.register_function must be a function")
                )
            function = Function(name, args[1], (), None)
        elif len(args) == 1:
            function = self._named_function(args[0])
        else:
            raise ScriptRaise(self._err("ERR wrong number of arguments to redis.register_function"))
        if not valid_name(function.name):
            raise ScriptRaise(self._err(f"ERR {NAME_ERROR}"))
        if function.name in loading.functions:
            raise ScriptRaise(self._err("ERR Function already exists in the library"))
        loading.functions[function.name] = function

    def _named_function(self, table: Any) -> Function:
        """luaRegisterFunctionReadNamedArgs: the keys in the table's order, any case."""

        def refuse(message: str) -> ScriptRaise:
            return ScriptRaise(self._err(f"ERR {message}"))

        if lupa.lua_type(table) != "table":
            raise refuse(
                "calling redis.register_function with a single argument is only applicable "
                "to Lua table (representing named arguments)."
            )
        name = description = callback = None
        flags: set[bytes] = set()
        for key, value in table.items():
            key_text = _lua_string(key)
            if key_text is None:
                raise refuse("named argument key given to redis.register_function is not a string")
            key_text = key_text.lower()
            if key_text == b"function_name":
                name = _lua_string(value)
                if name is None:
                    raise refuse(
                        "function_name argument given to redis.register_function must be a string"
                    )
            elif key_text == b"description":
                description = _lua_string(value)
                if description is None:
                    raise refuse(
                        "description argument given to redis.register_function must be a string"
                    )
            elif key_text == b"callback":
                if lupa.lua_type(value) != "function":
                    raise refuse(
                        "callback argument given to redis.register_function must be a function"
                    )
                callback = value
            elif key_text == b"flags":
                if lupa.lua_type(value) != "table":
                    raise refuse(
                        "flags argument to redis.register_function must be a table "
                        "representing function flags"
                    )
                flags = self._function_flags(value)
            else:
                raise refuse("unknown argument given to redis.register_function")
        if name is None:
            raise refuse("redis.register_function must get a function name argument")
        if callback is None:
            raise refuse("redis.register_function must get a callback argument")
        ordered = tuple(flag for flag in FUNCTION_FLAGS if flag in flags)
        return Function(name, callback, ordered, description)

    def _function_flags(self, table: Any) -> set[bytes]:
        """luaRegisterFunctionReadFlags: table[1], table[2]... up to a nil."""
        flags = set()
        index = 1
        while (value := table[index]) is not None:
            flag = _lua_string(value)
            if flag is None or flag.lower() not in FUNCTION_FLAGS:
                raise ScriptRaise(self._err("ERR unknown flag given"))
            flags.add(flag.lower())
            index += 1
        return flags

    def _load_timed_out(self) -> bool:
        loading = self.loading
        return loading is not None and time.monotonic() > loading.deadline

    def _error_fields(self, error: Any) -> tuple[Any, Any, Any, bool]:
        """A script's error: (message, source, line, True) for an error table,
        (its text, None, None, False) for anything else."""
        fields = self._error_info(error)
        if isinstance(fields, tuple):  # the table's four values
            return fields[0], fields[1], fields[2], True
        return fields, None, None, False  # one value: tostring(error)

    def _error_reply(self, error: Any, name: str) -> ErrorReply:
        message, source, line, is_table = self._error_fields(error)
        if not is_table:
            text = _text(message)
            if text == "not enough memory":
                self.lua.gccollect()
            return ErrorReply(f"ERR Error running script {name}, {text[:100]} ")
        text = "ERR unknown error" if message is None else _text(message)
        if source is not None and line is not None:
            text += f" script: {name}, on {_text(source)}:{_text(line)}."
        return ErrorReply(text)

    def _call(self, *args: Any) -> Any:
        """redis.call (worker thread): the reply as Lua sees it; an error raises."""
        ok, reply = self._command(args)
        if not ok:
            raise ScriptRaise(reply)
        return reply

    def _pcall(self, *args: Any) -> Any:
        """redis.pcall: an error is returned as its {err=...} table."""
        return self._command(args)[1]

    def _command(self, args: tuple[Any, ...]) -> tuple[bool, Any]:
        run = self.current
        if run is None:
            return False, self._err(
                "ERR redis.call/pcall can only be called inside a script invocation"
            )
        if not args:
            return False, self._err(
                "ERR Please specify at least one argument for this redis lib call"
            )
        argv = _command_argv(args)
        if argv is None:
            return False, self._err(
                "ERR Lua redis lib command arguments must be strings or integers"
            )
        self._post((_CALL, argv))
        reply = self.replies.get()
        if isinstance(reply, ErrorReply):
            return False, self._err(_error_text(reply.message))
        cap = self.lua.get_max_memory()
        if cap and not _lua_libs.fits(_reply_size(reply), cap - self.lua.get_memory_used()):
            # lupa would fail to push it (see fits()): the script's own OOM error
            return False, self._err(
                "ERR Script used more memory than lua-memory-limit allows: not enough memory"
            )
        return True, self.to_lua(reply, run.resp)

    def _unwrap(self, error: Any) -> Any:
        """The Lua error value of an exception a Python function raised."""
        if isinstance(error, ScriptRaise):
            return error.value
        if isinstance(error, lupa.LuaMemoryError):
            return b"not enough memory"
        log.error("a script's library call failed: %r", error)
        return self._err(f"ERR internal error in a library call: {error!r}")

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptRaise(self._err("ERR wrong number of arguments"))
        data = args[0]
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            data = _lua_number_text(data)
        elif not isinstance(data, bytes):
            data = b""
        return sha1hex(data).encode()

    def _acl_check_cmd(self, *args: Any) -> bool:
        if not args:
            raise ScriptRaise(
                self._err("ERR Please specify at least one argument for this redis lib call")
            )
        argv = _command_argv(args)
        if argv is None:
            raise ScriptRaise(
                self._err("ERR Lua redis lib command arguments must be strings or integers")
            )
        run = self.current
        if run is not None and self._permitted is not None:
            # reads the caller's user and the command table from this thread:
            # while a script runs, no ACL SETUSER or DELUSER runs to change them
            verdict = self._permitted(run.caller, argv)
        else:  # an engine of its own (tests): no ACLs, every command allowed
            verdict = True if self._known(argv[0]) else None
        if verdict is None:
            raise ScriptRaise(self._err("ERR Invalid command passed to redis.acl_check_cmd()"))
        return verdict

    def _set_repl(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptRaise(self._err("ERR redis.set_repl() requires two arguments."))
        flags = _lua_libs.to_number(args[0]) or 0
        if int(flags) & ~3:
            raise ScriptRaise(
                self._err(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL "
                    "or REPL_NONE."
                )
            )

    def _err(self, message: str) -> Any:
        return self.table_from({b"err": message.encode("utf-8", "surrogateescape")})

    def _check_kill(self) -> bool:
        run = self.current
        return run is not None and run.killed

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptRaise(self._err("ERR redis.setresp() requires one argument."))
        resp = _lua_libs.to_number(args[0]) or 0
        if resp not in (2, 3):
            raise ScriptRaise(self._err("ERR RESP version must be 2 or 3."))
        if self.current is not None:
            self.current.resp = int(resp)

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise ScriptRaise(self._err("ERR redis.log() requires two arguments or more."))
        level = _lua_libs.to_number(args[0])
        if level is None:
            raise ScriptRaise(self._err("ERR First argument must be a number (log level)."))
        if not 0 <= int(level) <= 3:
            raise ScriptRaise(self._err("ERR Invalid debug level."))
        parts = []
        for arg in args[1:]:
            if isinstance(arg, bytes):
                parts.append(arg)
            elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
                parts.append(_lua_number_text(arg))
        text = b" ".join(parts).decode(errors="replace")
        if level >= 3:
            log.warning("%s", text)
        elif level == 2:
            log.info("%s", text)
        else:
            log.debug("%s", text)

    # -- conversions -----------------------------------------------------------

    def to_lua(self, reply: Reply, resp: int) -> Any:
        """A command's reply as Redis hands it to Lua (RESP2 or RESP3 client)."""
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        if reply is None or kind is NullArray:
            return None if resp == 3 else False
        if kind is Status:
            return self.table_from({b"ok": reply.encode()})
        if kind is bool:
            return reply if resp == 3 else int(reply)
        if kind is str:
            return reply.encode()
        if isinstance(reply, float):  # Score too
            if resp == 3:
                return self.table_from({b"double": reply})
            if type(reply) is Score:  # _format_double, compiled, would take it for a float
                return format_score(reply)
            return _format_double(reply)
        if isinstance(reply, ErrorReply):
            return self._err(_error_text(reply.message))
        if isinstance(reply, dict):
            if resp == 3:
                inner = self.lua.table()
                for key, value in map_pairs(reply):
                    inner[self.to_lua(key, resp)] = self.to_lua(value, resp)
                return self.table_from({b"map": inner})
            flat = []
            for key, value in map_pairs(reply):
                flat.append(self.to_lua(key, resp))
                flat.append(self.to_lua(value, resp))
            return self.table_from(flat)
        if isinstance(reply, (set, frozenset)):
            if resp == 3:
                inner = self.lua.table()
                for member in reply:
                    inner[self.to_lua(member, resp)] = True
                return self.table_from({b"set": inner})
            return self.table_from([self.to_lua(member, resp) for member in reply])
        if isinstance(reply, (list, tuple)):
            table = self.lua.table()
            for index, item in enumerate(reply, 1):
                value = self.to_lua(item, resp)
                if value is not None:
                    table[index] = value
            return table
        if isinstance(reply, (bytearray, memoryview)):
            return bytes(reply)
        return False

    def to_reply(self, value: Any, resp: int) -> Reply:
        """A script's return value as Redis replies it."""
        kind = type(value)
        if kind is bytes:
            return value
        if kind is bool:
            if resp == 2:
                return 1 if value else None
            return value
        if kind is int or kind is float:
            return _to_long_long(value)
        if value is None or lupa.lua_type(value) != "table":
            return None
        what, payload, count = (*self._classify(value), None)[:3]
        if what == b"array":
            return [self.to_reply(payload[index], resp) for index in range(1, count + 1)]
        if what == b"err":
            return ErrorReply(_text(payload))
        if what == b"ok":
            return Status(_text(payload).replace("\r", " ").replace("\n", " "))
        if what == b"double":
            number = float(payload)
            return -0.0 if number == 0 and self._negative_zero_double(value) else number
        if what in (b"big_number", b"verbatim"):
            return payload  # a bulk string (RESP2's form; RESP3's types are not encodable here)
        if what == b"map":
            result: dict[Any, Any] = {}
            for index in range(1, count + 1, 2):
                key = _hashable(self.to_reply(payload[index], resp))
                result[key] = self.to_reply(payload[index + 1], resp)
            return result
        if what == b"set":
            return {_hashable(self.to_reply(payload[index], resp)) for index in range(1, count + 1)}
        return None


class _Loading:
    """A library's code being run: what it registered so far, and until when it may run."""

    __slots__ = ("deadline", "functions")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.functions: dict[bytes, Function] = {}


def _lua_string(value: Any) -> bytes | None:
    """lua_isstring + lua_tolstring: a string, or a number as Lua writes it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _lua_number_text(value)
    return None


def _hashable(value: Reply) -> Reply:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, float):
        return _lua_number_text(value).decode()
    return str(value)


def _error_text(message: str) -> str:
    """luaPushErrorBuff on "-<message>": a code and a message, without CR/LF at the ends."""
    code, space, rest = message.partition(" ")
    if not space:
        code, rest = "ERR", message
    return f"{code} {rest.strip(chr(13) + chr(10))}"


def _no_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("not accessible from scripts")


class _Rand48:
    """Redis's redisLrand48 (rand.c): lrand48 with its fixed initial state."""

    A = 0x5DEECE66D
    C = 0xB
    MASK = (1 << 48) - 1
    MAX = 2**31  # REDIS_LRAND48_MAX is INT32_MAX; % it, then / it

    def __init__(self) -> None:
        self.x = 0x1234ABCD330E

    def next(self) -> int:
        self.x = (self.A * self.x + self.C) & self.MASK
        return self.x >> 17

    def random(self) -> float:
        return (self.next() % 2147483647) / 2147483647

    def seed(self, seed: float) -> None:
        self.x = ((int(seed) & 0xFFFFFFFF) << 16) | 0x330E


class Scripting:
    """The server's scripts and functions: EVAL's script cache and interpreter,
    the function libraries and theirs (a second interpreter, as in Redis: SCRIPT
    FLUSH does not touch functions, FUNCTION FLUSH does not touch scripts),
    and the script or function running now."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.scripts: dict[str, Any] = {}  # sha -> the compiled function
        self.flags: dict[str, frozenset[bytes] | None] = {}  # sha -> shebang flags
        self.functions = Libraries()  # FUNCTION LOAD's libraries (_functions.py)
        self.running: ScriptRun | None = None
        self._engine: LuaEngine | None = None
        self._function_engine: LuaEngine | None = None
        self._rand = _Rand48()  # one math.random sequence for scripts and functions, as Redis
        self.client = Client(server, 0)  # the script's own client (Redis's lua client)
        self.client.in_exec = True  # blocking commands answer at once

    # -- settings ---------------------------------------------------------

    def busy_threshold(self) -> float:
        """busy-reply-threshold (lua-time-limit) in seconds; 0: never BUSY."""
        return int(self.server.config.parameters[b"busy-reply-threshold"].value) / 1000

    def memory_limit(self) -> int:
        return int(self.server.config.parameters[b"lua-memory-limit"].value)

    def engine(self) -> LuaEngine:
        """EVAL's interpreter."""
        engine = self._engine
        if engine is None:
            engine = self._engine = self._new_engine()
        else:
            engine.memory_limit = self.memory_limit()
        return engine

    def function_engine(self) -> LuaEngine:
        """The functions' interpreter."""
        engine = self._function_engine
        if engine is None:
            engine = self._function_engine = self._new_engine()
        else:
            engine.memory_limit = self.memory_limit()
        return engine

    def _new_engine(self) -> LuaEngine:
        from .commands.connection import SERVER_VERSION

        app = self.server.app
        return LuaEngine(
            self.memory_limit(),
            SERVER_VERSION,
            lambda name: app.lookup(name) is not None,
            self._rand,
            self.server.acl_check_cmd,
        )

    def declares_no_writes(self, command: bytes, argv: list[bytes]) -> bool:
        """Whether this EVAL, EVALSHA or FCALL runs a script or function that
        declares no-writes (CLIENT PAUSE WRITE lets it run). One without a
        shebang, or unknown, may write (Redis's evalGetCommandFlags)."""
        flags: frozenset[bytes] | tuple[bytes, ...] | None = None
        if command == b"eval":
            parsed = parse_shebang(argv[1])
            flags = None if isinstance(parsed, ErrorReply) else parsed
        elif command == b"evalsha":
            flags = self.flags.get(argv[1].decode("latin-1").lower())
        else:
            function = self.functions.function(argv[1])
            flags = None if function is None else function.flags
        return flags is not None and b"no-writes" in flags

    # -- the cache --------------------------------------------------------

    def load(self, body: bytes) -> tuple[str, Any]:
        """SCRIPT LOAD / EVAL: the script's sha and function, compiled once."""
        sha = sha1hex(body)
        function = self.scripts.get(sha)
        if function is None:
            function = self.engine().compile(_strip_shebang(body))
            if isinstance(function, ErrorReply):
                return sha, function
            self.scripts[sha] = function
        return sha, function

    def flush(self) -> None:
        """SCRIPT FLUSH: forget every script; a new interpreter, as Redis does."""
        self.scripts.clear()
        self.flags.clear()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # -- the libraries ------------------------------------------------------

    async def create_library(
        self, caller: Client, code: bytes, libraries: Libraries, *, replace: bool
    ) -> bytes | ErrorReply:
        """Load a library into `libraries` as functionsCreateWithLibraryCtx
        does (FUNCTION LOAD, and each library of a RESTORE): read its metadata
        line, compile its code, run it (registering its functions, for at
        most LOAD_TIMEOUT) and link it. Its name, or Redis's error; a library
        that fails leaves no trace (one it was to replace stays)."""
        metadata = parse_metadata(code)
        if isinstance(metadata, str):
            return ErrorReply(f"ERR {metadata}")
        if not valid_name(metadata.name):
            return ErrorReply(f"ERR {NAME_ERROR}")
        if metadata.engine.upper() != ENGINE:
            return ErrorReply(f"ERR Engine '{_text(metadata.engine)}' not found")
        if metadata.name in libraries.libraries and not replace:
            return ErrorReply(f"ERR Library '{_text(metadata.name)}' already exists")
        engine = self.function_engine()
        chunk = engine.compile_library(metadata.body)
        if isinstance(chunk, ErrorReply):
            return chunk
        run = ScriptRun(caller, _text(metadata.name), chunk, [], [], True, kind=LOAD)
        registered = await self._execute(
            caller, run, engine, lambda: engine.load_library(run, LOAD_TIMEOUT)
        )
        if isinstance(registered, ErrorReply):
            return registered
        if not registered:
            return ErrorReply("ERR No functions registered")
        error = libraries.add(Library(metadata.name, code, registered), replace=replace)
        return ErrorReply(f"ERR {error}") if error else metadata.name

    def flush_functions(self) -> None:
        """FUNCTION FLUSH: no libraries; a new interpreter, as Redis does."""
        self.functions = Libraries()
        if self._function_engine is not None:
            self._function_engine.close()
            self._function_engine = None

    # -- running ------------------------------------------------------------

    async def run(
        self,
        caller: Client,
        name: str,
        function: Any,
        keys: list[bytes],
        args: list[bytes],
        read_only: bool,
    ) -> Reply:
        """Run a compiled script for `caller`: atomically (every other client
        waits), killable with SCRIPT KILL, its commands run on this thread."""
        engine = self.engine()
        run = ScriptRun(caller, name, function, keys, args, read_only)
        return await self._execute(caller, run, engine, lambda: engine.execute(run))

    async def fcall(
        self,
        caller: Client,
        function: Function,
        keys: list[bytes],
        args: list[bytes],
        read_only: bool,
        command: list[bytes],
    ) -> Reply:
        """Run a function for `caller` (FCALL), as run() runs a script:
        killable with FUNCTION KILL, listed by FUNCTION STATS."""
        engine = self.function_engine()
        run = ScriptRun(
            caller, _text(function.name), function.callback, keys, args, read_only,
            kind=FUNCTION, command=command,
        )  # fmt: skip
        return await self._execute(caller, run, engine, lambda: engine.execute(run))

    async def _execute(
        self, caller: Client, run: ScriptRun, engine: LuaEngine, job: Callable[[], Any]
    ) -> Any:
        """Run `job` in the engine's thread as `run`: every other client waits
        (dispatch() holds their commands), its redis.call run on this thread."""
        if self.running is not None:  # cannot happen: dispatch holds everyone
            return BUSY_FUNCTION if self.running.kind == FUNCTION else BUSY
        client = self.client
        client.select(caller.db.index)
        client.protocol = 2
        client.authenticated = True
        self.running = run
        try:
            engine.submit(job)
            try:
                return await self._serve(engine, run)
            except trio.Cancelled:
                # Only a server that stops cancels a command (its grace period
                # is over, or a second SIGINT): a script still running then is
                # killed, one that wrote too, as redis-server's SHUTDOWN NOSAVE
                # ends a busy script; its end is awaited (the kill hook raises
                # within HOOK_INSTRUCTIONS), so nothing runs in Lua after.
                run.killed = run.stopping = True
                with trio.CancelScope(shield=True):
                    await self._serve(engine, run)
                raise
        finally:
            self.running = None
            run.done.set()

    async def _serve(self, engine: LuaEngine, run: ScriptRun) -> Reply:
        from ._dispatch import script_call

        requests, replies = engine.requests, engine.replies
        client = self.client
        deadline = time.monotonic() + SLICE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await engine.wait_posted()
                deadline = time.monotonic() + SLICE
                continue
            try:
                kind, payload = requests.get(timeout=remaining)
            except queue.Empty:
                continue
            if kind == _DONE:
                return payload
            client.protocol = run.resp
            replies.put(script_call(client, payload, run))

    def admit(self, spec: CommandSpec, argv: list[bytes]) -> bool | ErrorReply:
        """While a script runs, for another client's command: True to hold it
        until the script ends (or turns busy), False to run it now (allowed
        while busy), or the BUSY error."""
        run = self.running
        assert run is not None
        if not run.busy:
            threshold = self.busy_threshold()
            if run.kind == LOAD or threshold <= 0 or time.monotonic() - run.started < threshold:
                return True
            run.busy = True
        if "allow_busy" in spec.flags or _allowed_busy(spec, argv):
            return False
        return BUSY_FUNCTION if run.kind == FUNCTION else BUSY

    async def wait_turn(self) -> None:
        """Until the running script ends or passes busy-reply-threshold."""
        run = self.running
        if run is None:
            return
        threshold = self.busy_threshold()
        if threshold <= 0 or run.kind == LOAD:  # a library's code never turns busy
            await run.done.wait()
            return
        with trio.move_on_at(_trio_deadline(run.started + threshold)):
            await run.done.wait()

    def kill(self, *, function: bool = False) -> Reply:
        """SCRIPT KILL, or FUNCTION KILL (`function`): each refuses the other's
        kind with the BUSY text that names the right command (scriptKill)."""
        run = self.running
        if run is None or run.kind == LOAD:
            return NOTBUSY
        if run.wrote:
            return UNKILLABLE
        if run.kind == FUNCTION and not function:
            return BUSY_FUNCTION
        if run.kind == EVAL and function:
            return BUSY
        run.killed = True
        from ._reply import OK

        return OK

    def busy_error(self) -> ErrorReply | None:
        """While a script runs past busy-reply-threshold: the BUSY error that
        names the command to kill it (SHUTDOWN without NOSAVE gets it, as in
        Redis's shutdownCommand); otherwise None."""
        run = self.running
        if run is None or not run.busy:
            return None
        return BUSY_FUNCTION if run.kind == FUNCTION else BUSY

    def kill_for_shutdown(self) -> None:
        """SHUTDOWN NOSAVE while a script is busy: the script is killed, one
        that wrote too, as redis-server exits under it, and its caller gets
        no reply: its connection just closes, as Redis's does."""
        run = self.running
        if run is None:
            return
        run.killed = run.stopping = True
        run.caller.close_after_reply = run.caller.killed = True

    def memory_info(self) -> dict[str, int]:
        """INFO memory's scripting fields, by Redis 7's names (the interpreters'
        memory: 0 for one not started yet)."""
        eval_vm = self._engine.memory_used() if self._engine is not None else 0
        functions_vm = self._function_engine.memory_used() if self._function_engine else 0
        return {
            "used_memory_vm_eval": eval_vm,
            "number_of_cached_scripts": len(self.scripts),
            "number_of_functions": self.functions.function_count(),
            "number_of_libraries": len(self.functions),
            "used_memory_vm_functions": functions_vm,
            "used_memory_vm_total": eval_vm + functions_vm,
        }

    def function_stats(self) -> Reply:
        """FUNCTION STATS: the function running now (BUSY while a script runs),
        and the engine's counts."""
        run = self.running
        running: dict[bytes, Any] | None = None
        if run is not None and run.kind == EVAL:
            return BUSY
        if run is not None and run.kind == FUNCTION:
            running = {
                b"name": run.name.encode("utf-8", "surrogateescape"),
                b"command": list(run.command),
                b"duration_ms": int((time.monotonic() - run.started) * 1000),
            }
        counts = {
            b"libraries_count": len(self.functions),
            b"functions_count": self.functions.function_count(),
        }
        return {b"running_script": running, b"engines": {ENGINE: counts}}


def _trio_deadline(monotonic_deadline: float) -> float:
    return trio.current_time() + (monotonic_deadline - time.monotonic())


# Redis flags these subcommands allow_busy; the built-in specs flag whole commands
_BUSY_SUBCOMMANDS = {b"script": {b"kill"}, b"function": {b"kill", b"stats"}}


def _allowed_busy(spec: CommandSpec, argv: list[bytes]) -> bool:
    subs = _BUSY_SUBCOMMANDS.get(spec.name_bytes)
    return subs is not None and len(argv) > 1 and argv[1].lower() in subs


def _strip_shebang(body: bytes) -> bytes:
    """The body Lua compiles: a shebang line emptied, the line count kept."""
    if body.startswith(b"#!"):
        end = body.find(b"\n")
        return b"" if end < 0 else body[end:]
    return body


SHEBANG_FLAGS = {
    b"no-writes",
    b"allow-oom",
    b"allow-stale",
    b"no-cluster",
    b"allow-cross-slot-keys",
}


def parse_shebang(body: bytes) -> frozenset[bytes] | ErrorReply | None:
    """A script's shebang flags (#!lua flags=no-writes,...), None without a shebang."""
    if not body.startswith(b"#!"):
        return None
    end = body.find(b"\n")
    line = body[: end if end >= 0 else len(body)]
    parts = line.split()
    if not parts or parts[0] != b"#!lua":
        engine = parts[0].decode(errors="replace") if parts else "#!"
        return ErrorReply(f"ERR Unexpected engine in script shebang: {engine}")
    flags: set[bytes] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            return ErrorReply(f"ERR Unknown lua shebang option: {part.decode(errors='replace')}")
        for flag in part[len(b"flags=") :].split(b","):
            if not flag:
                continue
            if flag not in SHEBANG_FLAGS:
                shown = flag.decode(errors="replace")
                return ErrorReply(f"ERR Unexpected flag in script shebang: {shown}")
            flags.add(flag)
    return frozenset(flags)


def _reply_size(reply: Reply) -> int:
    """About how many bytes a reply takes once it is Lua values."""
    if isinstance(reply, (bytes, bytearray, str)):
        return len(reply) + 32
    if isinstance(reply, dict):
        return sum(_reply_size(k) + _reply_size(v) for k, v in map_pairs(reply)) + 64
    if isinstance(reply, (list, tuple, set, frozenset)):
        return sum(_reply_size(item) for item in reply) + 64
    return 32
