import numpy as np, scipy.sparse as sp, time, sys
import lti_reduce as lr
def heat(N, m, fe=False):
    h=1/(N+1); n=N*N
    I=sp.identity(N)
    x=np.arange(1,N+1)*h
    if fe:
        M1=sp.diags([np.ones(N-1),4*np.ones(N),np.ones(N-1)],[-1,0,1])*(h/6)
        K1=sp.diags([-np.ones(N-1),2*np.ones(N),-np.ones(N-1)],[-1,0,1])/h
        A=-(sp.kron(K1,M1)+sp.kron(M1,K1)); E=sp.kron(M1,M1)
    else:
        T=sp.diags([np.ones(N-1),-2*np.ones(N),np.ones(N-1)],[-1,0,1])/h**2
        A=sp.kron(T,I)+sp.kron(I,T); E=None
    X,Y=np.meshgrid(x,x,indexing='ij'); X=X.ravel(); Y=Y.ravel()
    B=np.zeros((n,m)); C=np.zeros((m,n))
    for j in range(m):
        cx=(j%2)*0.5; cy=(j//2)*0.5 if m>1 else 0
        B[:,j]=((X>=cx)&(X<cx+0.5)&(Y>=cy)&(Y<cy+0.5)).astype(float) if m>1 else ((X<0.5)).astype(float)
        C[j]=((X>=0.5-cx)&(X<1-cx)&(Y>=0.5-cy)&(Y<1-cy)).astype(float)/ (n/4) if m>1 else ((X>=0.5)).astype(float)/(n/2)
    if fe: B = E@B
    return lr.SparseStateSpace(A.tocsc(),B,C,E=None if E is None else E.tocsc())
N=int(sys.argv[1]); m=int(sys.argv[2]); fe=len(sys.argv)>3
s=heat(N,m,fe)
t=time.time(); res=lr.lowrank_balanced_truncation(s,order=10,error_samples=0); t=time.time()-t
print(s, "time",t, res.controllability.iterations, res.observability.iterations, res.controllability.Z.shape, res.hsv[:5], len(res.hsv))
print(res.controllability.shifts[:30].real)
