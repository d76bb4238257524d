import { MirrorDetail } from "./mirror-detail";

export const dynamic = "force-dynamic";

export default async function MirrorPage({ params }: { params: Promise<{ uuid: string }> }) {
  const { uuid } = await params;
  return <MirrorDetail uuid={decodeURIComponent(uuid)} />;
}
