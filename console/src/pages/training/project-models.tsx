import { Link } from "react-router";
import { ModelService, type Model } from "@flip/gen/flip/hub/v1/training_pb.js";
import { useClient } from "../../session/session-context.js";
import { DataTable } from "../../ui/data-table.js";
import { formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, Loading, Panel } from "../../ui/page.js";
import { ShowMoreButton, useShowMore } from "../../ui/show-more.js";

const PAGE = 50;

/** A project's models (the first 50, grown by "Show more" to the end of the list), with a way to add one for those who may. */
export function ProjectModels({ projectId, canEdit }: { projectId: string; canEdit: boolean }) {
  const models = useClient(ModelService);
  const list = useShowMore(
    async (page, signal) => {
      const res = await models.listModels({ projectId, page }, { signal });
      return { rows: res.models, nextPageToken: res.page?.nextPageToken ?? "" };
    },
    [projectId],
    PAGE,
  );
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
      {list.rows ? (
        <>
          <DataTable<Model>
            caption="Models of this project"
            rows={list.rows}
            rowKey={(m) => m.id}
            empty={canEdit ? "No models yet. Add one with “New model”." : "No models yet."}
            columns={[
              { header: "Name", cell: (m) => <Link to={`/models/${m.id}`}>{m.name}</Link>, width: "30%" },
              { header: "Image", cell: (m) => <code>{m.image}</code>, width: "26%" },
              { header: "Owner", cell: (m) => personLabel(m.owner, m.ownerId), width: "26%" },
              { header: "Created", cell: (m) => formatTime(m.createdAt), width: "18%" },
            ]}
          />
          <ShowMoreButton list={list} label="Show more models" />
        </>
      ) : list.error ? null : (
        <Loading label="Loading models…" />
      )}
    </Panel>
  );
}
