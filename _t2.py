import numpy as np, scipy.sparse as sp, time
import lti_reduce as lr
rng=np.random.default_rng(0)
N=14; n=N*N
T=sp.diags([np.ones(N-1),-2*np.ones(N),np.ones(N-1)],[-1,0,1])*(N+1)**2
I=sp.identity(N)
A=(sp.kron(T,I)+sp.kron(I,T)) + sp.diags(rng.standard_normal(n-1)*40,1)
E=sp.diags(1+rng.random(n))+sp.diags(0.1*np.ones(n-1),1)
B=rng.standard_normal((n,2)); C=rng.standard_normal((3,n))
for dt,AA in [(0,A),(1,sp.identity(n)+A/(8*(N+1)**2))]:
    s=lr.SparseStateSpace(AA,B,C,E=E,dt=dt)
    t=time.time(); res=lr.lowrank_balanced_truncation(s,order=8); t=time.time()-t
    d=s.to_dense()
    h=lr.hankel_singular_values(d)
    k=min(20,len(res.hsv))
    print("t",t,"iters",res.controllability.iterations,res.observability.iterations, "shifts cplx", np.sum(res.controllability.shifts.imag!=0))
    print("rel hsv err", np.max(np.abs(res.hsv[:k]-h[:k])/h[:k]), h[:k][-1]/h[0])
    rd=lr.balanced_truncation(d,order=8)
    e1=lr.hinf_norm(lr.StateSpace(*blk(d,res.system)) ) if False else None
    err=res.error_estimate; 
    print("bound",res.error_bound, rd.error_bound,"est",err)
    W,V=res.W,res.V
    print("WhEV-I", np.abs(W.T@(E@V)-np.eye(8)).max())
    # dense error systems
    def errsys(G,Gr):
        import scipy.linalg as sla
        A_=sla.block_diag(G.A,Gr.A); B_=np.vstack([G.B,Gr.B]); C_=np.hstack([G.C,-Gr.C])
        return lr.StateSpace(A_,B_,C_,G.D-Gr.D,dt=G.dt)
    print("hinf", lr.hinf_norm(errsys(d,res.system))[0], lr.hinf_norm(errsys(d,rd.system))[0])
    r2=lr.balanced_truncation(s,order=8)
    print(type(r2).__name__)
