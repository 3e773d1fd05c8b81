// The suites run Express 4 and Koa 2 from aliased packages that ship no types of their own.
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
