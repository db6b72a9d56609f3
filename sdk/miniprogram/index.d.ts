/** The subset of the `wx` API the SDK uses (uni-app's `uni` and Taro's `Taro` fit too). */
export interface WxLike {
  login(options: {
    timeout?: number;
    success(result: { code: string }): void;
    fail(error: { errMsg?: string }): void;
  }): void;
  request(options: {
    url: string;
    method: 'GET' | 'POST';
    data?: string;
    header?: Record<string, string>;
    dataType?: 'json';
    timeout?: number;
    success(result: { statusCode: number; data: unknown; header?: Record<string, string> }): void;
    fail(error: { errMsg?: string }): void;
  }): void;
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, value: unknown): void;
  removeStorageSync(key: string): void;
}

/** A second factor a mini-program can give: a TOTP code, or one of the account's recovery codes. */
export type SecondFactor = 'otp' | 'recovery_code';

/** What `onSecondFactor` is told: the factors to offer, and why it is asked again. */
export interface SecondFactorPrompt {
  /** In the order to offer them, e.g. ["otp", "recovery_code"]. */
  factors: SecondFactor[];
  /** After a wrong code: how many more this sign-in takes; null on the first prompt. */
  attemptsLeft: number | null;
  /** After a wrong or malformed code: the IdP's refusal ("invalid_grant", "invalid_request"). */
  error: IdpError | null;
}

/** The user's code; null or undefined when the user cancels (login() then rejects with
 * "mfa_required"). */
export type SecondFactorAnswer = { otp: string } | { recoveryCode: string } | null | undefined;

export interface IdpOptions {
  /** The issuer, e.g. "https://idp.example.com" (add it to the request domains). */
  issuer: string;
  /** The public mini-program client (CONTRACT §5). */
  clientId: string;
  /** Default "openid profile phone offline_access". */
  scope?: string;
  /** Sent as `acr_values` with the wx.login code, e.g. "urn:idp:acr:mfa" to require a second
   * factor for this sign-in. */
  acrValues?: string;
  /** Asked for a code when the IdP answers `mfa_required` (the account has a second factor, or
   * the client requires one). Without it, login() rejects with "mfa_required". */
  onSecondFactor?: (prompt: SecondFactorPrompt) => Promise<SecondFactorAnswer>;
  /** Default the global `wx`. */
  wx?: WxLike;
  /** Storage key of the tokens; default "idp.tokens". */
  storageKey?: string;
  /** Seconds before expiry at which a token is refreshed; default 60. */
  refreshMargin?: number;
  /** Milliseconds per request; default 15000. */
  timeout?: number;
  /** For tests: the clock in milliseconds. */
  now?: () => number;
}

export interface StoredTokens {
  access_token: string;
  refresh_token: string | null;
  id_token: string | null;
  scope: string;
  /** Milliseconds since the epoch. */
  expires_at: number;
}

export interface PhoneBinding {
  /** The account after a possible merge (CONTRACT §6). */
  sub: string;
  /** E.164, e.g. "+8613800138000". */
  phone_number: string;
  merged: boolean;
}

export type ScanStatus = 'waiting' | 'scanned' | 'confirmed' | 'refused' | 'used' | 'expired';

export interface ScanInfo {
  status: ScanStatus;
  /** The site asking, e.g. "Shop (idp.example.com)". */
  site: string;
  /** e.g. "Chrome 120 on Windows". */
  browser: string;
  /** The requesting network, e.g. "203.0.113.0/24". */
  network: string;
  requested_at: number;
  expires_in: number;
}

export declare class IdpError extends Error {
  /** RFC 6749 error ("invalid_grant", "temporarily_unavailable", …), "mfa_required",
   * "unmet_authentication_requirements", "not_found", "already_answered", "network_error",
   * "wechat_login_failed", or "http_<status>". */
  readonly code: string;
  readonly description: string;
  /** HTTP status, 0 when no answer came. */
  readonly status: number;
  /** Seconds to wait, from Retry-After (503, 429); 0 when absent. */
  readonly retryAfter: number;
  /** "mfa_required": the second factors the user can give here; [] otherwise. */
  readonly factors: SecondFactor[];
  /** A wrong second-factor code: how many more the sign-in takes; null otherwise. */
  readonly attemptsLeft: number | null;
  /** "mfa_required" from bindPhone: what was bound before the factor; null otherwise. */
  readonly binding: PhoneBinding | null;
}
export declare class NetworkError extends IdpError {}
export declare class WeChatLoginError extends IdpError {}

export declare class IdpClient {
  constructor(options: IdpOptions);
  readonly issuer: string;
  readonly clientId: string;
  /** The stored tokens, or null. */
  tokens(): StoredTokens | null;
  /** wx.login, then the token exchange (and the second factor, through onSecondFactor). */
  login(): Promise<StoredTokens>;
  /** A valid access token: refreshed ahead of expiry, one refresh at a time. */
  accessToken(): Promise<string>;
  /** Refresh now; falls back to login() when the refresh token is dead. */
  refresh(): Promise<StoredTokens>;
  /** The getPhoneNumber code; keeps the fresh tokens the answer carries. */
  bindPhone(code: string): Promise<PhoneBinding>;
  /** The confirm page's information about a scanned website code. */
  scanInfo(scene: string): Promise<ScanInfo>;
  /** Answer a website's scan-to-sign-in. */
  confirmScan(scene: string, decision: 'confirm' | 'refuse'): Promise<{ status: 'confirmed' | 'refused' }>;
  /** Revoke the refresh token and forget the tokens. */
  logout(): Promise<void>;
}

export declare function createIdp(options: IdpOptions): IdpClient;

declare const sdk: {
  createIdp: typeof createIdp;
  IdpClient: typeof IdpClient;
  IdpError: typeof IdpError;
  NetworkError: typeof NetworkError;
  WeChatLoginError: typeof WeChatLoginError;
};
export default sdk;
