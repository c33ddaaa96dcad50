import torch, triton.testing as tt, dataclasses
from lkconv.ops.depthwise2d import direct
x = torch.randn(64,124,56,56,device="cuda"); dy = torch.randn(64,124,56,56,device="cuda")
ax = direct._axes(x, 51, 5, (1,1), (1,1), 25, 2, (56,56))
base = direct.choose_config(ax, 124, "wgrad", 4)
print(base)
ref = direct.conv_wgrad(dy, x, (124,1,51,5), (1,1), (25,25,2,2), (1,1), dataclasses.replace(base, skip_border=False))
for skip in (True, False):
    for per in (0, 4, 8, 16, 32):
        cfg = dataclasses.replace(base, skip_border=skip, strips_per_prog=per)
        f = lambda: direct.conv_wgrad(dy, x, (124,1,51,5), (1,1), (25,25,2,2), (1,1), cfg)
        err = ((f()-ref).norm()/ref.norm()).item()
        ms = tt.do_bench(f, warmup=10, rep=100, return_mode="median")
        print(f"skip={skip} per={per} ms={ms:.3f} err={err:.1e}", flush=True)
