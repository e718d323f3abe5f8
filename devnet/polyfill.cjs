// Node 20 lacks Promise.withResolvers, which ipfs-core's dependencies call; Node >= 22 has it natively.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
