const {createSession}=require('/work/main/dist/runtime/session.js');
const ort=require('/work/main/node_modules/onnxruntime-node');
(async()=>{for (const threads of [1,2]) {const {session}=await createSession('/tmp/flm/infer.onnx',{threads});
for (const b of [1,8,32,64]) {const x=new ort.Tensor('float32',new Float32Array(b*3*64*64),[b,3,64,64]);
for(let i=0;i<3;i++) await session.run({image:x});
const t=performance.now();let n=0;while(performance.now()-t<1500){await session.run({image:x});n++;}
const dt=performance.now()-t;console.log('threads',threads,'batch',b,'ms/run',(dt/n).toFixed(2),'img/s',(n*b/dt*1000).toFixed(0));}}})();
