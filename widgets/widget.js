/* fundgoal embed loader; see README "Embedding the bar". C is widget.css verbatim. */
(()=>{
let S,D=document,s=D.currentScript||[...D.querySelectorAll('script[src*="/widget"]')].pop(),C=`:host{display:block}
.p{display:block;min-height:160px}.p.c{min-height:48px}
.w{all:initial;display:block;box-sizing:border-box;height:160px;overflow:hidden;padding:12px 16px;border:1px solid var(--t);border-radius:12px;background:var(--bg);color:var(--fg);font:14px/20px system-ui,sans-serif;--a:#0b6e4f;--bg:#fff;--fg:#111827;--m:#4b5563;--t:#e5e7eb;--s:-1}
.dark{--a:#34d399;--bg:#111827;--fg:#f9fafb;--m:#d1d5db;--t:#374151}
@media(prefers-color-scheme:dark){.auto{--a:#34d399;--bg:#111827;--fg:#f9fafb;--m:#d1d5db;--t:#374151}}
[dir=rtl]{--s:1}
.h,.o,.c{display:flex;justify-content:space-between;align-items:center;gap:12px}
.n,.s{overflow:hidden;text-overflow:ellipsis}
.n,.s,.q,.pc,.r{white-space:nowrap}
.n,.pc,.r,.mk,.bt{font-weight:700}
.n{font-size:16px;line-height:22px}
.s,.pc,.l{color:var(--m)}
.g .pc,.y{color:var(--fg)}
.t{position:relative}.q,.f,.x,.mk:after{position:absolute}
.q{inset-inline-start:var(--x);transform:translateX(calc(var(--x)*var(--s)))}
.mk{bottom:17px;padding:0 8px;border-radius:6px;background:var(--fg);color:var(--bg);font-size:13px}
.mk:after{content:'';top:100%;inset-inline-start:clamp(4px,var(--x) - 5px,100% - 14px);border:5px solid transparent;border-bottom:0;border-top-color:var(--fg)}
.t{height:12px;margin:34px 0 30px;border-radius:6px;background:var(--t)}
.f{inset-block:0;width:var(--p);border-radius:inherit;background:var(--a);transition:width .6s}
.x{inset-block:0;inset-inline-start:calc(var(--x) - 1px);width:2px;background:var(--bg)}
.l{top:18px;font-size:12px;line-height:16px}
.o{height:36px}
.s{font-size:13px}
.bt{flex:none;padding:8px 20px;border-radius:8px;background:var(--a);color:var(--bg);text-decoration:none}
.bt:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
.w.c{height:48px;padding:0 12px;container-type:inline-size}
@container(max-width:440px){.c .n{display:none}}
.c .n{font-size:14px;max-width:40%}
.c .t{flex:1;min-width:30%;height:10px;margin:0}
.c .bt{padding:4px 14px}
@media(prefers-reduced-motion:reduce){.f{transition:none}}
`,H=[],
E=(p,c,x,t='div')=>{let e=D.createElement(t);e.className=c;e.textContent=x;p&&p.append(e);return e},
A=(e,o,k)=>{for(k in o)e.setAttribute(k,o[k]);return e},
V=(e,k,v)=>(e.style.setProperty('--'+k,v+'%'),e),
Z=(r,n)=>(S||(S=new CSSStyleSheet).replaceSync(C),r.adoptedStyleSheets=[S],r.replaceChildren(n)),
U=(x,v)=>{
let j=JSON.stringify(v),a=x.a,c=x.c,F=v.formatted||{},M=v.scale_max,P=v.bar_percent,R=v.goal_reached,
w=E(0,'w '+(a.theme||'auto')+(c?' c':'')+(R?' g':'')),L=[[0,F.zero]],h,t,o,m,q=1e9;
if(x.j==j)return;
w.dir=v.dir;w.lang=(v.locale||'').replace('_','-');
if(c)E(w,'n',v.title);else{h=E(w,'h');E(h,'n',v.title);E(h,'pc',R?F.reached:F.percent)}
t=A(E(w,'t'),{role:'progressbar','aria-valuemin':0,'aria-valuemax':M,'aria-valuenow':Math.min(v.raised,M),'aria-valuetext':F.valuetext,'aria-label':v.title});
E(t,'f');c||V(E(t,'q mk',F.raised),'x',P);
for(m of v.milestones||[])if(m.shown!==!1){let y=Math.min(100,100*m.amount/M);y>0&&y<100&&V(E(t,'x'),'x',y);L.push([y,m.formatted,m.label,m.reached])}
if(c)E(w,'r',F.raised);else{
for(m of L.reverse())if(q-m[0]>14)V(E(t,'q l'+(m[3]?' y':''),m[1]),'x',q=m[0]).title=m[2]||'';
o=E(w,'o');E(o,'s',[a.donors!='false'&&F.donors,F.deadline].filter(Boolean).join(' · '))}
if(a.button!='false')v.status=='active'&&/^https?:/.test(v.donate_url)?A(E(o||w,'bt',F.button,'a'),{href:v.donate_url,target:'_blank'}):c||E(o,'s',F.closed);
a.accent&&CSS.supports('color',a.accent)&&w.style.setProperty('--a',a.accent);
V(w,'p',x.P||0);Z(x.r,w);t.offsetWidth;V(w,'p',x.P=P);x.j=j},
G=n=>{
for(let e of D.querySelectorAll('[data-fundgoal]')){
let a=e.dataset,k=a.fundgoal+':'+(a.locale||D.documentElement.lang||'en'),c=a.compact!=null&&a.compact!='false',r;
if(!e.shadowRoot&&/^[a-z0-9-]{1,64}:[\w-]{1,35}$/.test(k))try{Z(r=e.attachShadow({mode:'open'}),E(0,c?'p c':'p','','slot'));H.push({e,r,k,a,c})}catch(_){}}
let h=H=H.filter(x=>x.e.isConnected),K=[...new Set(h.map(x=>x.k))].sort().join();
K&&fetch(new URL(s.src).origin+'/api/campaigns?c='+K,{credentials:'omit',mode:'cors',cache:n?'no-cache':'default'}).then(r=>r.json()).then(j=>j.items||{},_=>({})).then(I=>{
for(let x of h){let v=I[x.k];v&&!v.error?U(x,v):x.j||(x.r.lastChild.className='')}})};
if(s){D.readyState=='loading'?D.addEventListener('DOMContentLoaded',()=>G()):G();
D.addEventListener('visibilitychange',()=>D.hidden||G(1))}
})();
