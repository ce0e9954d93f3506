// The two devDependencies we test against ship no typings; tests describe
// the parts they use at the point of use.
declare module 'gossipmonger';
declare module 'gossipmonger-tcp-transport';
