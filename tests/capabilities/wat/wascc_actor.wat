;; waSCC actor (waPC, import module "wapc" as the wapc-guest crate (wascc-actor)
;; has it) calling the key-value provider the way that generation did.
;; Operations:
;;   call           payload = [u8 n][binding][u8 n][namespace][u8 n][operation][payload...]
;;                  does __host_call with those arguments; answers the host response, or
;;                  fails with the host error as its guest error
;;   HandleRequest  (waSCC's HTTP server operation) wascc:keyvalue "Add" {key: "hits",
;;                  value: 1} through binding "default"; answers the HTTP Response of that
;;                  generation, {statusCode: 200, status: "OK", header: {}, body: <the
;;                  AddResponse bytes the provider answered>}
;;   DeliverMessage (the generation's subscriber operation) the same "Add" with
;;                  {key: "messages", value: 1}; answers nothing
;;   anything else  fails with wapc-guest's "No handler registered for function <op>"
(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 2)

  (data (i32.const 16) "call")
  (data (i32.const 32) "HandleRequest")
  (data (i32.const 96) "DeliverMessage")
  (data (i32.const 400) "No handler registered for function ")
  (data (i32.const 160) "wascc:keyvalue")
  (data (i32.const 192) "Add")
  (data (i32.const 224) "default")
  ;; AddArgs {key: "hits", value: 1}  (17 bytes)
  (data (i32.const 256) "\82\a3key\a4hits\a5value\01")
  ;; Response {statusCode: 200, status: "OK", header: {}, body: bin8 ...  (38 bytes, then the length)
  ;; {key: "messages", value: 1}  (21 bytes)
  (data (i32.const 288) "\82\a3key\a8messages\a5value\01")
  (data (i32.const 320) "\84\aastatusCode\cc\c8\a6status\a2OK\a6header\80\a4body\c4")

  (global $REQ i32 (i32.const 65536))

  (func (export "wapc_init"))

  (func $ensure (param $end i32)
    (local $pages i32)
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable)))))

  (func $is (param $len i32) (param $s i32) (param $slen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $len) (local.get $slen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (global.get $REQ) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $s) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func $fail_with_host_error (param $at i32) (result i32)
    (local $n i32)
    (local.set $n (call $host_error_len))
    (call $ensure (i32.add (local.get $at) (local.get $n)))
    (call $host_error (local.get $at))
    (call $guest_error (local.get $at) (local.get $n))
    (i32.const 0))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $msg i32) (local $end i32) (local $n i32) (local $p i32)
    (local $b i32) (local $bl i32) (local $ns i32) (local $nsl i32) (local $o i32) (local $ol i32)
    (local.set $msg (i32.add (global.get $REQ) (local.get $op_len)))
    (local.set $end (i32.add (local.get $msg) (local.get $msg_len)))
    (call $ensure (local.get $end))
    (call $guest_request (global.get $REQ) (local.get $msg))

    (if (call $is (local.get $op_len) (i32.const 16) (i32.const 4))    ;; call
      (then
        (local.set $p (local.get $msg))
        (local.set $bl (i32.load8_u (local.get $p)))
        (local.set $b (i32.add (local.get $p) (i32.const 1)))
        (local.set $p (i32.add (local.get $b) (local.get $bl)))
        (local.set $nsl (i32.load8_u (local.get $p)))
        (local.set $ns (i32.add (local.get $p) (i32.const 1)))
        (local.set $p (i32.add (local.get $ns) (local.get $nsl)))
        (local.set $ol (i32.load8_u (local.get $p)))
        (local.set $o (i32.add (local.get $p) (i32.const 1)))
        (local.set $p (i32.add (local.get $o) (local.get $ol)))
        (if (call $host_call (local.get $b) (local.get $bl) (local.get $ns) (local.get $nsl)
                             (local.get $o) (local.get $ol)
                             (local.get $p) (i32.sub (local.get $end) (local.get $p)))
          (then
            (local.set $n (call $host_response_len))
            (call $ensure (i32.add (local.get $end) (local.get $n)))
            (call $host_response (local.get $end))
            (call $guest_response (local.get $end) (local.get $n))
            (return (i32.const 1))))
        (return (call $fail_with_host_error (local.get $end)))))

    (if (call $is (local.get $op_len) (i32.const 32) (i32.const 13))   ;; HandleRequest
      (then
        (if (i32.eqz (call $host_call (i32.const 224) (i32.const 7) (i32.const 160) (i32.const 14)
                                      (i32.const 192) (i32.const 3) (i32.const 256) (i32.const 17)))
          (then (return (call $fail_with_host_error (local.get $end)))))
        (local.set $n (call $host_response_len))
        (call $ensure (i32.add (local.get $end) (i32.add (local.get $n) (i32.const 64))))
        (memory.copy (local.get $end) (i32.const 320) (i32.const 38))
        (i32.store8 (i32.add (local.get $end) (i32.const 38)) (local.get $n))
        (call $host_response (i32.add (local.get $end) (i32.const 39)))
        (call $guest_response (local.get $end) (i32.add (local.get $n) (i32.const 39)))
        (return (i32.const 1))))

    (if (call $is (local.get $op_len) (i32.const 96) (i32.const 14))   ;; DeliverMessage
      (then
        (if (i32.eqz (call $host_call (i32.const 224) (i32.const 7) (i32.const 160) (i32.const 14)
                                      (i32.const 192) (i32.const 3) (i32.const 288) (i32.const 21)))
          (then (return (call $fail_with_host_error (local.get $end)))))
        (call $guest_response (i32.const 0) (i32.const 0))
        (return (i32.const 1))))

    ;; as wapc-guest: "No handler registered for function " + the operation
    (call $ensure (i32.add (local.get $end) (i32.add (local.get $op_len) (i32.const 35))))
    (memory.copy (local.get $end) (i32.const 400) (i32.const 35))
    (memory.copy (i32.add (local.get $end) (i32.const 35)) (global.get $REQ) (local.get $op_len))
    (call $guest_error (local.get $end) (i32.add (local.get $op_len) (i32.const 35)))
    (i32.const 0))
)
