;; A component of world meshhost:actor/actor, written by hand.
;; handle(operation, payload) dispatches on the operation's first letter:
;;   echo -> ok(payload)
;;   host -> host.call("default", "test:ns", "Test.Op", payload), its result passed on as is
;;   log  -> host.log("info", payload as text); ok(empty)
;;   fail -> err("failed on purpose")
;;   trap -> unreachable
;;   spin -> loop forever
;; Memory and a bump allocator live in a small "libc" core module so the
;; host imports can be lowered with them before the main module exists.
(component
  (import "meshhost:actor/host@0.1.0" (instance $host
    (export "call" (func (param "binding" string) (param "namespace" string)
                         (param "operation" string) (param "payload" (list u8))
                         (result (result (list u8) (error string)))))
    (export "log" (func (param "level" string) (param "message" string)))))

  (core module $Libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    ;; cabi_realloc: bump allocation, growing memory as needed (never frees)
    (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32)
                             (param $size i32) (result i32)
      (local $ptr i32) (local $pages i32)
      (local.set $ptr (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $ptr) (local.get $size)))
      (local.set $pages (i32.sub (i32.shr_u (i32.add (global.get $next) (i32.const 65535))
                                            (i32.const 16))
                                 (memory.size)))
      (if (i32.gt_s (local.get $pages) (i32.const 0))
        (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
      (local.get $ptr))
    ;; after each call the whole heap is free again
    (func (export "reset") (global.set $next (i32.const 4096))))
  (core instance $libc (instantiate $Libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))

  (core func $call (canon lower (func $host "call") (memory $mem) (realloc $realloc)))
  (core func $log (canon lower (func $host "log") (memory $mem) (realloc $realloc)))

  (core module $Main
    (import "libc" "memory" (memory 1))
    (import "libc" "reset" (func $reset))
    ;; 4 (ptr, len) pairs + a pointer where the result<list<u8>, string> is written
    (import "host" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "log" (func $log (param i32 i32 i32 i32)))
    (data (i32.const 64) "default")
    (data (i32.const 80) "test:ns")
    (data (i32.const 96) "Test.Op")
    (data (i32.const 112) "info")
    (data (i32.const 128) "failed on purpose")
    ;; result area at 16: tag (0 ok, 1 err) at +0, pointer at +4, length at +8
    (func $answer (param $tag i32) (param $ptr i32) (param $len i32) (result i32)
      (i32.store8 (i32.const 16) (local.get $tag))
      (i32.store (i32.const 20) (local.get $ptr))
      (i32.store (i32.const 24) (local.get $len))
      (i32.const 16))
    (func (export "handle") (param $op i32) (param $op_len i32) (param $p i32) (param $len i32)
                            (result i32)
      (local $c i32)
      (local.set $c (i32.load8_u (local.get $op)))
      (if (i32.eq (local.get $c) (i32.const 0x68))                    ;; 'h'ost
        (then
          (call $call (i32.const 64) (i32.const 7) (i32.const 80) (i32.const 7)
                      (i32.const 96) (i32.const 7) (local.get $p) (local.get $len) (i32.const 16))
          (return (i32.const 16))))
      (if (i32.eq (local.get $c) (i32.const 0x6c))                    ;; 'l'og
        (then
          (call $log (i32.const 112) (i32.const 4) (local.get $p) (local.get $len))
          (return (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))))
      (if (i32.eq (local.get $c) (i32.const 0x66))                    ;; 'f'ail
        (then (return (call $answer (i32.const 1) (i32.const 128) (i32.const 17)))))
      (if (i32.eq (local.get $c) (i32.const 0x74))                    ;; 't'rap
        (then unreachable))
      (if (i32.eq (local.get $c) (i32.const 0x73))                    ;; 's'pin
        (then (loop $forever (br $forever))))
      (call $answer (i32.const 0) (local.get $p) (local.get $len)))   ;; echo
    (func (export "post") (param i32) (call $reset)))
  (core instance $main (instantiate $Main
    (with "libc" (instance $libc))
    (with "host" (instance (export "call" (func $call)) (export "log" (func $log))))))

  (func $handle (param "operation" string) (param "payload" (list u8))
                (result (result (list u8) (error string)))
    (canon lift (core func $main "handle") (memory $mem) (realloc $realloc)
                (post-return (core func $main "post"))))
  (instance $handler (export "handle" (func $handle)))
  (export "meshhost:actor/handler@0.1.0" (instance $handler)))
