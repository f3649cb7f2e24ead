-- vmbridge-push.lua: tells vmbridge the moment a mail client changes a user's mail (flags, moves,
-- deletes, new mail), through Dovecot's push_notification plugin, so no IDLE connection per account
-- is needed. One POST per mail transaction to vmbridge's POST /dovecot-push (http.push in vmbridge).
--
-- Install (Dovecot 2.3, all in dovecot-core): copy this file where the mail uid can read it, then in
-- dovecot.conf, top level (a protocol block that sets mail_plugins must keep $mail_plugins):
--   mail_plugins = $mail_plugins notify push_notification mail_lua push_notification_lua
--   plugin {
--     push_notification_driver = lua:file=/etc/dovecot/vmbridge-push.lua
--     vmbridge_push_url = http://127.0.0.1:8080/dovecot-push   # vmbridge's http.host:port
--     vmbridge_push_token = "<http.push.token>"   # optional; quoted, '#' would start a comment
--     vmbridge_push_timeout_msecs = 500           # optional, per POST
--   }
-- and doveadm reload. Without vmbridge_push_url the script sends nothing.

-- Dovecot sends the POST before it answers the mail client, so a dead endpoint would add its
-- timeout to every command. After a failure, this script instance stays quiet for this long.
local BACKOFF_SECS = 30
-- vmbridge only needs "this user changed"; more events would only make a big body.
local MAX_EVENTS = 100
local DEFAULT_TIMEOUT_MSECS = 500

-- os.time() of the end of the current back-off, shared by every later transaction of this script
-- instance: one slow failure, then quiet. Dovecot loads the script per mail user in a process (an
-- IMAP session, a delivery), so a new session tries once more on its own.
local quiet_until = 0
-- One client per timeout value: settings are per user, and a client keeps its connection open
-- between transactions, which saves a connect per POST.
local clients = {}

local JSON_ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

-- Dovecot's Lua has no JSON module. Bytes >= 0x80 pass through untouched: mailbox names are
-- UTF-8 and JSON takes raw UTF-8, so only what JSON forbids raw (controls, quote, backslash) and
-- DEL (allowed, but invisible in any log of a body) are escaped.
local function json_string(s)
  return '"' .. string.gsub(tostring(s), '[\0-\31\127"\\]', function(c)
    return JSON_ESCAPES[c] or string.format('\\u%04x', string.byte(c))
  end) .. '"'
end

-- Numbers arrive as Lua floats (3.0), which would print as "3.0".
local function json_uint(n)
  return string.format('%d', math.tointeger(n) or math.floor(n))
end

local function setting(user, name)
  local v = user:plugin_getenv(name)
  if v == nil or v == '' then return nil end
  return v
end

local function timeout_msecs(user)
  local n = tonumber(setting(user, 'vmbridge_push_timeout_msecs') or '')
  if n == nil or n < 1 then return DEFAULT_TIMEOUT_MSECS end
  return math.floor(n)
end

local function client_for(timeout)
  local c = clients[timeout]
  if c == nil then
    c = dovecot.http.client {
      -- A retry would double the wait a mail client sees; the next transaction is the retry.
      max_attempts = 1,
      max_connect_attempts = 1,
      no_auto_retry = true,
      connect_timeout_msecs = timeout,
      request_timeout_msecs = timeout,
      request_absolute_timeout_msecs = timeout,
      user_agent = 'vmbridge-push.lua',
    }
    clients[timeout] = c
  end
  return c
end

-- The URL as it may appear in a log: without user:password@.
local function loggable(url)
  return (string.gsub(url, '^(%a[%w+.-]*://)[^/@]*@', '%1'))
end

function dovecot_lua_notify_begin_txn(user)
  local url = setting(user, 'vmbridge_push_url')
  -- Events of a transaction that will not be sent are not even collected.
  if url == nil or os.time() < quiet_until then return { off = true } end
  return {
    off = false,
    user = user.username,
    url = url,
    token = setting(user, 'vmbridge_push_token'),
    timeout = timeout_msecs(user),
    events = {},
    count = 0,
  }
end

local function collect(ctx, name, event, with_uid)
  if ctx.off then return end
  ctx.count = ctx.count + 1
  if ctx.count > MAX_EVENTS then return end
  local parts = { '"event":' .. json_string(name) }
  if event.mailbox ~= nil then parts[#parts + 1] = '"mailbox":' .. json_string(event.mailbox) end
  if with_uid and event.uid ~= nil then parts[#parts + 1] = '"uid":' .. json_uint(event.uid) end
  ctx.events[#ctx.events + 1] = '{' .. table.concat(parts, ',') .. '}'
end

local function is_empty(list)
  return list == nil or next(list) == nil
end

-- Dovecot reports a FlagsClear for every flag change, also one that only sets flags (the Lua
-- driver asks for the old flags, and that alone makes the event), with nothing in it. Such a
-- FlagsClear is no change of its own; sending it would double every STORE's events.
local function changed_flags(event)
  return not (is_empty(event.flags) and is_empty(event.keywords))
end

local function message_event(name)
  return function(ctx, event) collect(ctx, name, event, true) end
end

local function mailbox_event(name)
  return function(ctx, event) collect(ctx, name, event, false) end
end

-- No MessageNew or MessageAppend: new mail is never a mail client's change to a voicemail (the
-- voicemail emails are vmbridge's own APPENDs), and a MOVE or a restore from the trash also
-- expunges where the email was, which is sent. Leaving them out keeps every delivery and every
-- APPEND (a client saving to Sent, vmbridge's import) free of a POST, and of the headers and body
-- snippet Dovecot reads for those events.
dovecot_lua_notify_event_message_read = message_event('MessageRead')
dovecot_lua_notify_event_message_trash = message_event('MessageTrash')
dovecot_lua_notify_event_message_expunge = message_event('MessageExpunge')
dovecot_lua_notify_event_mailbox_create = mailbox_event('MailboxCreate')
dovecot_lua_notify_event_mailbox_delete = mailbox_event('MailboxDelete')
dovecot_lua_notify_event_mailbox_rename = mailbox_event('MailboxRename')

function dovecot_lua_notify_event_flags_set(ctx, event)
  if changed_flags(event) then collect(ctx, 'FlagsSet', event, true) end
end

function dovecot_lua_notify_event_flags_clear(ctx, event)
  if changed_flags(event) then collect(ctx, 'FlagsClear', event, true) end
end

local function body_of(ctx)
  local body = '{"user":' .. json_string(ctx.user) .. ',"events":[' .. table.concat(ctx.events, ',') .. ']'
  if ctx.count > MAX_EVENTS then body = body .. ',"truncated":true' end
  return body .. '}'
end

-- Returns nil when the endpoint took the POST, else why not (for the log; never the token).
local function post(ctx)
  local ok, result = pcall(function()
    local request = client_for(ctx.timeout):request { url = ctx.url, method = 'POST' }
    request:add_header('Content-Type', 'application/json')
    if ctx.token ~= nil then request:add_header('Authorization', 'Bearer ' .. ctx.token) end
    request:set_payload(body_of(ctx))
    return request:submit()
  end)
  if not ok then return 'error: ' .. tostring(result) end
  local status = result:status()
  if status >= 200 and status <= 299 then return nil end
  -- Statuses from 9000 up are the client's own (connect refused, timed out, ...).
  return string.format('status %d: %s', status, tostring(result:reason()))
end

function dovecot_lua_notify_end_txn(ctx, success)
  -- A rolled-back transaction changed nothing.
  if ctx.off or success == false or ctx.count == 0 then return end
  local failure = post(ctx)
  if failure == nil then return end
  quiet_until = os.time() + BACKOFF_SECS
  dovecot.i_warning(string.format('vmbridge-push: POST %s failed (%s); not sending for %d s',
    loggable(ctx.url), failure, BACKOFF_SECS))
end
