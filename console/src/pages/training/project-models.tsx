import { useState } from "react";
import { Link } from "react-router";
import { ModelService, type Model } from "@flip/gen/flip/hub/v1/training_pb.js";
import { useClient } from "../../session/session-context.js";
import { DataTable } from "../../ui/data-table.js";
import { formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, Loading, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";

const PAGE = 50;

/** A project's models (one ListModels call, grown by "Show more"), with a way to add one for those who may. */
export function ProjectModels({ projectId, canEdit }: { projectId: string; canEdit: boolean }) {
  const models = useClient(ModelService);
  const [limit, setLimit] = useState(PAGE);
  const list = useLoad((signal) => models.listModels({ projectId, page: { pageSize: limit } }, { signal }), [projectId, limit]);
  return (
    <Panel
      title="Models"
      actions={
        canEdit ? (
          <Link className="button button-small" to={`/projects/${projectId}/models/new`}>
            New model
          </Link>
        ) : null
      }
    >
      <ErrorMessage error={list.error} prefix="Could not list the models" />
      {list.data ? (
        <>
          <DataTable<Model>
            caption="Models of this project"
            rows={list.data.models}
            rowKey={(m) => m.id}
            empty={canEdit ? "No models yet. Add one with “New model”." : "No models yet."}
            columns={[
              { header: "Name", cell: (m) => <Link to={`/models/${m.id}`}>{m.name}</Link>, width: "30%" },
              { header: "Image", cell: (m) => <code>{m.image}</code>, width: "26%" },
              { header: "Owner", cell: (m) => personLabel(m.owner, m.ownerId), width: "26%" },
              { header: "Created", cell: (m) => formatTime(m.createdAt), width: "18%" },
            ]}
          />
          {list.data.page?.nextPageToken && limit < 500 ? (
            <button type="button" className="button button-small" disabled={list.loading} onClick={() => setLimit((l) => Math.min(500, l + PAGE))}>
              Show more models
            </button>
          ) : null}
        </>
      ) : list.error ? null : (
        <Loading label="Loading models…" />
      )}
    </Panel>
  );
}
