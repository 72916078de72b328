import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, RouterProvider } from "react-router";
import { routes } from "./routes.js";
import { SessionProvider } from "./session/session-context.js";
import { SessionStore } from "./session/session-store.js";
import "./styles.css";

const store = new SessionStore();
const router = createBrowserRouter(routes);

void store.resume().finally(() => {
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <SessionProvider store={store}>
        <RouterProvider router={router} />
      </SessionProvider>
    </StrictMode>,
  );
});
