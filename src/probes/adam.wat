;; Adam's element loop (torch.optim.Adam without amsgrad, torch/optim/adam.py
;; _single_tensor_adam) on float32 arrays in linear memory, four lanes at a time with
;; WebAssembly SIMD: the trainer's Float32Adam calls it (src/probes/trainer.ts). Compiled to
;; src/probes/adam-wasm.ts by `npm run build:wasm` (scripts/build-wasm.mjs, wabt); a test checks
;; the embedded bytes are this file's.
(module
  (import "env" "memory" (memory 1))
  ;; adam(p, g, m, v, bytes, b1, b2, c1, c2, stepSize, invBc2Sqrt, eps): byte offsets of
  ;; float32 arrays in memory, `bytes` a multiple of 16.
  (func (export "adam")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $bytes i32)
    (param $b1 f32) (param $b2 f32) (param $c1 f32) (param $c2 f32)
    (param $step f32) (param $inv f32) (param $eps f32)
    (local $i i32) (local $B1 v128) (local $B2 v128) (local $C1 v128) (local $C2 v128)
    (local $STEP v128) (local $INV v128) (local $EPS v128)
    (local $g4 v128) (local $m4 v128) (local $v4 v128)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $STEP (f32x4.splat (local.get $step)))
    (local.set $INV (f32x4.splat (local.get $inv)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (block $done
      (br_if $done (i32.eqz (local.get $bytes)))
      (loop $next
        (local.set $g4 (v128.load (i32.add (local.get $g) (local.get $i))))
        ;; m ← β1·m + (1−β1)·g
        (local.set $m4 (f32x4.add
          (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (local.get $i))))
          (f32x4.mul (local.get $C1) (local.get $g4))))
        ;; v ← β2·v + (1−β2)·g·g
        (local.set $v4 (f32x4.add
          (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (local.get $i))))
          (f32x4.mul (f32x4.mul (local.get $C2) (local.get $g4)) (local.get $g4))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $m4))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $v4))
        ;; p ← p − stepSize·m / (√v·(1/√(1−β2ᵗ)) + ε)
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.sub
            (v128.load (i32.add (local.get $p) (local.get $i)))
            (f32x4.div
              (f32x4.mul (local.get $STEP) (local.get $m4))
              (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $v4)) (local.get $INV)) (local.get $EPS)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $bytes))))))
)
