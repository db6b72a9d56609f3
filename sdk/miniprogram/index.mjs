// ES module entry (uni-app, Taro, bundlers); the code lives once, in index.cjs.
import sdk from './index.cjs';

export const { createIdp, IdpClient, IdpError, NetworkError, WeChatLoginError } = sdk;
export default sdk;
