;; waPC actor that imports WASI preview1 like Rust/TinyGo builds do.
;;   _start     prints "started\n" to stdout (fd_write) - must be called once at load
;;   print      writes the payload to stdout;  eprint  to stderr
;;   random     answers 16 bytes from random_get
;;   clock      answers clock_time_get(realtime) as u64 LE nanoseconds
;;   env        answers environ_sizes_get as two u32 (count, bytes)
;;   nosys      calls path_open (not provided) and answers its errno as u32
;;   exit       calls proc_exit(3)
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasmbus" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wasmbus" "__guest_response" (func $guest_response (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "started\n")
  (global $REQ i32 (i32.const 65536))

  ;; write `len` bytes at `ptr` to file descriptor `fd` (iovec at 512, count at 520)
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 512) (local.get $ptr))
    (i32.store (i32.const 516) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 512) (i32.const 1) (i32.const 520))))

  (func (export "_start") (call $write (i32.const 1) (i32.const 16) (i32.const 8)))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $msg i32) (local $c i32)
    (local.set $msg (i32.add (global.get $REQ) (local.get $op_len)))
    (call $guest_request (global.get $REQ) (local.get $msg))
    ;; dispatch on the first letter and length of the operation name
    (local.set $c (i32.load8_u (global.get $REQ)))
    (if (i32.and (i32.eq (local.get $c) (i32.const 0x70)) (i32.eq (local.get $op_len) (i32.const 5)))  ;; print
      (then (call $write (i32.const 1) (local.get $msg) (local.get $msg_len))
            (call $guest_response (i32.const 0) (i32.const 0)) (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x65))                                                     ;; eprint / env / exit
      (then
        (if (i32.eq (local.get $op_len) (i32.const 6))                                               ;; eprint
          (then (call $write (i32.const 2) (local.get $msg) (local.get $msg_len))
                (call $guest_response (i32.const 0) (i32.const 0)) (return (i32.const 1))))
        (if (i32.eq (local.get $op_len) (i32.const 3))                                               ;; env
          (then (drop (call $environ_sizes_get (i32.const 600) (i32.const 604)))
                (call $guest_response (i32.const 600) (i32.const 8)) (return (i32.const 1))))
        (call $proc_exit (i32.const 3)) (unreachable)))                                              ;; exit
    (if (i32.eq (local.get $c) (i32.const 0x72))                                                     ;; random
      (then (drop (call $random_get (i32.const 700) (i32.const 16)))
            (call $guest_response (i32.const 700) (i32.const 16)) (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x63))                                                     ;; clock
      (then (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 800)))
            (call $guest_response (i32.const 800) (i32.const 8)) (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x6e))                                                     ;; nosys
      (then (i32.store (i32.const 900)
              (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                               (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 904)))
            (call $guest_response (i32.const 900) (i32.const 4)) (return (i32.const 1))))
    (i32.const 0))
)
