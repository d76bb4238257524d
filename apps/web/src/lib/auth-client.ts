"use client";

import { usernameClient } from "better-auth/client/plugins";
import { createAuthClient } from "better-auth/react";

/** Same-origin client: the session lives in an httpOnly cookie the browser never reads. */
export const authClient = createAuthClient({ plugins: [usernameClient()] });
