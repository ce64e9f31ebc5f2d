;; waPC test actor: every host ABI function, plus ways to fail.
;; Operations (request = op name + payload):
;;   echo         answer the payload
;;   fail         answer with a guest error "failed on purpose"
;;   host         __host_call("default", "test:ns", "Test.Op", payload); answer the
;;                host response, or fail with the host error as guest error
;;   log          __console_log(payload); answer nothing
;;   count        answer a counter (u32 LE) that lives as long as the instance
;;   init         answer the value wapc_init stored (u32 LE, 1 once initialised)
;;   trap         execute `unreachable`
;;   loop         spin forever (the CPU limit must stop it)
;;   grow         grow memory a page at a time until it fails, then trap
;;   spin         count down from (payload as u32 LE) million, then answer nothing
;;   fill         grow memory a page at a time to (payload as u32 LE) MiB, trap if it
;;                cannot, then answer nothing
;;   bad_ptr      call __guest_response with a pointer outside memory
;;   no_response  report success without calling __guest_response
(module
  (import "MODULE" "__guest_request" (func $guest_request (param i32 i32)))
  (import "MODULE" "__guest_response" (func $guest_response (param i32 i32)))
  (import "MODULE" "__guest_error" (func $guest_error (param i32 i32)))
  (import "MODULE" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "MODULE" "__host_response_len" (func $host_response_len (result i32)))
  (import "MODULE" "__host_response" (func $host_response (param i32)))
  (import "MODULE" "__host_error_len" (func $host_error_len (result i32)))
  (import "MODULE" "__host_error" (func $host_error (param i32)))
  (import "MODULE" "__console_log" (func $console_log (param i32 i32)))
  (memory (export "memory") 2)

  ;; constant strings: operation names and host-call arguments
  (data (i32.const 16) "echo")
  (data (i32.const 32) "fail")
  (data (i32.const 48) "host")
  (data (i32.const 64) "log")
  (data (i32.const 80) "count")
  (data (i32.const 96) "init")
  (data (i32.const 112) "trap")
  (data (i32.const 128) "loop")
  (data (i32.const 144) "grow")
  (data (i32.const 160) "bad_ptr")
  (data (i32.const 176) "no_response")
  (data (i32.const 192) "spin")
  (data (i32.const 200) "fill")
  (data (i32.const 208) "failed on purpose")
  (data (i32.const 240) "default")
  (data (i32.const 256) "test:ns")
  (data (i32.const 272) "Test.Op")

  (global $counter (mut i32) (i32.const 0))
  (global $inited (mut i32) (i32.const 0))

  ;; requests are written at 64 KiB; memory grows to fit
  (global $REQ i32 (i32.const 65536))

  (func (export "START") (global.set $inited (i32.const 1)))

  ;; make sure memory reaches byte `end`; trap if it cannot grow
  (func $ensure (param $end i32)
    (local $pages i32)
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable)))))

  ;; is the operation (at $REQ, $len bytes) equal to the string at $s with $slen bytes?
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

  ;; answer a u32 (little endian) from scratch address 8
  (func $respond_u32 (param $v i32) (result i32)
    (i32.store (i32.const 8) (local.get $v))
    (call $guest_response (i32.const 8) (i32.const 4))
    (i32.const 1))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $msg i32) (local $end i32) (local $n i32)
    (local.set $msg (i32.add (global.get $REQ) (local.get $op_len)))
    (local.set $end (i32.add (local.get $msg) (local.get $msg_len)))
    (call $ensure (local.get $end))
    (call $guest_request (global.get $REQ) (local.get $msg))

    (if (call $is (local.get $op_len) (i32.const 16) (i32.const 4))    ;; echo
      (then (call $guest_response (local.get $msg) (local.get $msg_len)) (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 32) (i32.const 4))    ;; fail
      (then (call $guest_error (i32.const 208) (i32.const 17)) (return (i32.const 0))))
    (if (call $is (local.get $op_len) (i32.const 48) (i32.const 4))    ;; host
      (then
        (if (call $host_call (i32.const 240) (i32.const 7) (i32.const 256) (i32.const 7)
                             (i32.const 272) (i32.const 7) (local.get $msg) (local.get $msg_len))
          (then
            (local.set $n (call $host_response_len))
            (call $ensure (i32.add (local.get $end) (local.get $n)))
            (call $host_response (local.get $end))
            (call $guest_response (local.get $end) (local.get $n))
            (return (i32.const 1))))
        (local.set $n (call $host_error_len))
        (call $ensure (i32.add (local.get $end) (local.get $n)))
        (call $host_error (local.get $end))
        (call $guest_error (local.get $end) (local.get $n))
        (return (i32.const 0))))
    (if (call $is (local.get $op_len) (i32.const 64) (i32.const 3))    ;; log
      (then (call $console_log (local.get $msg) (local.get $msg_len))
            (call $guest_response (i32.const 0) (i32.const 0))
            (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 80) (i32.const 5))    ;; count
      (then (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
            (return (call $respond_u32 (global.get $counter)))))
    (if (call $is (local.get $op_len) (i32.const 96) (i32.const 4))    ;; init
      (then (return (call $respond_u32 (global.get $inited)))))
    (if (call $is (local.get $op_len) (i32.const 112) (i32.const 4))   ;; trap
      (then unreachable))
    (if (call $is (local.get $op_len) (i32.const 128) (i32.const 4))   ;; loop
      (then (loop $forever (br $forever))))
    (if (call $is (local.get $op_len) (i32.const 144) (i32.const 4))   ;; grow
      (then (loop $more
              (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
            unreachable))
    (if (call $is (local.get $op_len) (i32.const 192) (i32.const 4))   ;; spin
      (then
        (local.set $n (i32.mul (i32.load (local.get $msg)) (i32.const 1000000)))
        (block $done
          (loop $again
            (br_if $done (i32.eqz (local.get $n)))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $again)))
        (call $guest_response (i32.const 0) (i32.const 0))
        (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 200) (i32.const 4))   ;; fill
      (then
        (local.set $n (i32.mul (i32.load (local.get $msg)) (i32.const 16)))
        (block $done
          (loop $again
            (br_if $done (i32.ge_u (memory.size) (local.get $n)))
            (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
            (br $again)))
        (call $guest_response (i32.const 0) (i32.const 0))
        (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 160) (i32.const 7))   ;; bad_ptr
      (then (call $guest_response (i32.const 0xFFFFFF00) (i32.const 100)) (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 176) (i32.const 11))  ;; no_response
      (then (return (i32.const 1))))
    ;; unknown operation
    (call $guest_error (i32.const 208) (i32.const 17))
    (i32.const 0))
)
