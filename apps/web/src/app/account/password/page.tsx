import { ChangePasswordForm } from "~/components/change-password-form";

export const dynamic = "force-dynamic";
export const metadata = { title: "Your password — Mirrorplane" };

export default function PasswordPage() {
  return (
    <>
      <h1>Your password</h1>
      <ChangePasswordForm temporary={false} />
    </>
  );
}
