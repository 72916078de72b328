import { createContext, useContext, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { createClient, type Client } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import type { User } from "@flip/gen/flip/hub/v1/users_pb.js";
import type { SessionState, SessionStore } from "./session-store.js";

const SessionContext = createContext<SessionStore | undefined>(undefined);

export function SessionProvider({ store, children }: { store: SessionStore; children: ReactNode }) {
  return <SessionContext.Provider value={store}>{children}</SessionContext.Provider>;
}

export function useSessionStore(): SessionStore {
  const store = useContext(SessionContext);
  if (!store) throw new Error("useSessionStore outside SessionProvider");
  return store;
}

export function useSessionState(): SessionState {
  const store = useSessionStore();
  return useSyncExternalStore(store.subscribe, () => store.state);
}

/** The signed-in user; only for pages behind the sign-in (the app shell renders them only then). */
export function useUser(): User {
  const state = useSessionState();
  if (state.status !== "signed-in") throw new Error("useUser while signed out");
  return state.user;
}

/** A generated Connect client for `service`, calling the hub as the signed-in user. */
export function useClient<S extends DescService>(service: S): Client<S> {
  const store = useSessionStore();
  return useMemo(() => createClient(service, store.transport), [service, store]);
}
